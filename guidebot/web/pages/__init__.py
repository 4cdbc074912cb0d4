"""Server-rendered pages: the guide task page (and later the console and sidebar)."""
