"""A guide's browser for the sidebar: WeCom's OAuth round trip against the sandbox."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from tests.support.stack import Stack

OAUTH_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"


@dataclass
class Guide:
    http: aiohttp.ClientSession
    base: str
    csrf: str
    oauth: str  # the authorize URL the page sent the guide to

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(f"{self.base}{path}") as resp:
            return resp.status, await resp.json(content_type=None)

    async def post(self, path: str, body: Any, *, csrf: str | None = None) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        async with self.http.post(f"{self.base}{path}", json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    def cookie(self) -> str:
        return next(c.value for c in self.http.cookie_jar if c.key == "gb_sidebar")


async def oauth_code(stack: Stack, userid: str, tenant: str = "acme") -> str:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/{tenant}/oauth_code",
                               json={"userid": userid}) as resp:
        assert resp.status == 200
        return str((await resp.json())["code"])


async def sign_in(stack: Stack, userid: str, tenant: str = "acme") -> Guide:
    """Open the sidebar, follow WeCom's OAuth with a sandbox code, land on the page."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = f"{stack.bot_url}/sidebar/{tenant}"
    async with http.get(page, allow_redirects=False) as resp:
        assert resp.status == 302, resp.status
        oauth = resp.headers["Location"]
    state = parse_qs(urlsplit(oauth).query)["state"][0]
    code = await oauth_code(stack, userid, tenant)
    async with http.get(page, params={"code": code, "state": state},
                        allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == f"/sidebar/{tenant}"
    async with http.get(page, allow_redirects=False) as resp:
        assert resp.status == 200
        html = await resp.text()
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found is not None
    return Guide(http, page, found.group(1), oauth)


async def play_wecom_oauth(stack: Stack, route: Any, userid: str, page: str) -> None:
    """A browser test's route for `page` (a path such as /sidebar/acme): the first open of
    the page, where guidebot sends the browser to WeCom's authorize URL, and WeCom sends it
    back to the page with a code for `userid`. (Playwright routes only the first request of a
    redirect chain, so WeCom's leg is played here.)"""
    answer = await route.fetch(max_redirects=0)
    location = answer.headers.get("location", "")
    if not location.startswith(OAUTH_AUTHORIZE):
        await route.fulfill(response=answer)
        return
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["redirect_uri"].endswith(page)
    code = await oauth_code(stack, userid, page.rsplit("/", 1)[1])
    back = f"{stack.bot_url}{page}?" + urlencode({"code": code, "state": query["state"]})
    await route.fulfill(status=302, headers={"Location": back,
                                             "Set-Cookie": answer.headers["set-cookie"]})
