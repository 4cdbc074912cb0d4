"""Public webhooks: signed order events from the store backend and the visit beacon."""
