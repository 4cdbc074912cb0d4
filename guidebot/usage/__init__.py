"""Per-tenant usage metering for the SaaS operator."""
