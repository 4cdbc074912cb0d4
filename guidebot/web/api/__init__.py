"""Admin JSON API (DESIGN §5.3): /api/v1/{tenant}/…, bearer-authenticated."""
