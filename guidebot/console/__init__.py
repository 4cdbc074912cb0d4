"""HQ's admin JSON API (and, later, the web console)."""
