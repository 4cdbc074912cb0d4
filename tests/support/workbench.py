"""A member's browser for the mobile workbench (/m/<tenant>): WeCom's OAuth round trip
against the sandbox, as the sidebar's (tests/support/sidebar.py)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.support.sidebar import oauth_code
from tests.support.stack import Stack


class Member:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def page(self, path: str = "") -> tuple[int, str]:
        async with self.http.get(f"{self.base}{path}", allow_redirects=False) as resp:
            return resp.status, await resp.text()

    def cookie(self) -> str:
        return next(c.value for c in self.http.cookie_jar if c.key == "gb_sidebar")


async def sign_in(stack: Stack, userid: str, tenant: str = "acme") -> Member:
    """Open the workbench, follow WeCom's OAuth with a sandbox code, come back signed in."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = f"{stack.bot_url}/m/{tenant}"
    async with http.get(page, allow_redirects=False) as resp:
        assert resp.status == 302, resp.status
        oauth = resp.headers["Location"]
    query = parse_qs(urlsplit(oauth).query)
    assert query["redirect_uri"] == [f"{stack.settings.server.public_url}/m/{tenant}"]
    code = await oauth_code(stack, userid, tenant)
    async with http.get(page, params={"code": code, "state": query["state"][0]},
                        allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == f"/m/{tenant}"
    return Member(http, page)


def figure(html: str, ident: str) -> str:
    """The text of the element with this id (one line, no tags inside)."""
    found = re.search(rf'id="{ident}"[^>]*>([^<]*)<', html)
    assert found is not None, ident
    return found.group(1).strip()


def ranked(html: str) -> list[list[str]]:
    """The store's guides table: each row's cells, in rank order."""
    body = html.split('id="wb-guides"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr data-guide=[^>]*>(.*?)</tr>", body, re.S)
    return [[re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<td>(.*?)</td>", r, re.S)]
            for r in rows]
