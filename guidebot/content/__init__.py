"""content_library/: loading, validating and rendering brand HQ's files."""
