"""预打标签 in tests: the console's CSV upload."""

from __future__ import annotations

import aiohttp

from tests.support.console import Console


async def upload(console: Console, csrf: str, text: str) -> tuple[int, str, str]:
    """The 标签管理 page's 预打标签 form with `text` as its file: (status, body, Location)."""
    form = aiohttp.FormData()
    form.add_field("_csrf", csrf)
    form.add_field("csv", text.encode(), filename="pretags.csv", content_type="text/csv")
    async with console.http.post(console.url("/console/acme/pretags"), data=form,
                                 allow_redirects=False) as resp:
        return resp.status, await resp.text(), resp.headers.get("Location", "")
