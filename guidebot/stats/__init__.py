"""Daily statistics kept incrementally, and the figures the console and metrics API show."""
