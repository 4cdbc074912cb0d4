"""Everything HTTP that is not the WeCom callback: api/ (admin JSON), webhooks/ (orders,
visit beacon), pages/ (guide task pages; later the console and sidebar)."""
