"""Query functions: keyword-only, taking the session; services own transactions."""
