"""A seeded console scenario (customers added through the sandbox, signed orders) and a
signed-in console client, for the console's scenario and browser tests."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.commerce import paid, post_settled
from tests.support.stack import Stack
from tests.support.wecom import contact_event_xml


@dataclass(frozen=True)
class Seeded:
    """What the scenario created, and the figures the console must show for it."""

    code_customers: tuple[str, str]
    other_customers: tuple[str, str]
    adds_code: int = 2
    adds_other: int = 2
    deletions: int = 1
    first_purchases: int = 2
    repurchases: int = 1
    orders: int = 3  # credited to guides
    gmv: str = "¥325.05"  # 19900 + 2605 + 10000 fen
    orders_new: int = 2
    gmv_new: str = "¥225.05"
    gmv_existing: str = "¥100.00"
    orders_all: int = 4
    gmv_all: str = "¥375.05"
    commission: str = "¥9.75"  # 597 + 78 + 300 fen at the default 3 %
    lina_gmv: str = "¥225.05"


async def seed(stack: Stack) -> Seeded:
    status, code = await stack.admin("/channels", method="POST",
                                     json={"guide": "lina", "store": "S01", "campaign": "c1"})
    assert status == 201, code
    a = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                 name="张晓雨")
    b = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                 name="李雷")
    c = await stack.sandbox.simulate_add_contact("acme", userid="wangfang", name="韩梅梅")
    d = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="王强")
    await stack.runtime.drain()
    xml = contact_event_xml("del_follow_user", corp_id=stack.tenant().corp_id, guide="lina",
                            external_userid=d["external_userid"],
                            create_time=int(time.time()))
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()
    one_sku = [{"sku": "SKU1", "category": "beauty", "quantity": 1}]
    for order_no, who, fen in (("CO-1", a, 19900), ("CO-2", a, 2605), ("CO-3", c, 10000),
                               ("CO-4", None, 5000)):
        items = [{**one_sku[0], "amount_fen": fen}]
        customer = who["external_userid"] if who else None
        status, body = await post_settled(stack, paid(order_no, customer=customer, items=items,
                                                    unionid=None if who else "o-unknown"))
        assert status == 200, body
    return Seeded((a["external_userid"], b["external_userid"]),
                  (c["external_userid"], d["external_userid"]))


async def upkeep(stack: Stack) -> int:
    stats = stack.runtime.services.stats
    assert stats is not None
    return await stats.upkeep()


class Console:
    """A browser-like client: its own cookie jar, the CSRF token read from the pages."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    def url(self, path: str) -> str:
        return f"{self.stack.bot_url}{path}"

    async def login(self, tenant: str, token: str) -> aiohttp.ClientResponse:
        async with self.http.get(self.url("/console/login")) as resp:
            csrf = csrf_in(await resp.text())
        async with self.http.post(self.url("/console/login"), allow_redirects=False,
                                  data={"tenant": tenant, "token": token, "_csrf": csrf}) as r:
            await r.read()
            return r

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.url(path), allow_redirects=False, **kw) as resp:
            return resp.status, await resp.text(), resp

    async def post(self, path: str, data: dict[str, str],
                   **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.post(self.url(path), data=data, allow_redirects=False,
                                  **kw) as resp:
            return resp.status, await resp.text(), resp


def csrf_in(html: str) -> str:
    found = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def figure(html: str, name: str) -> str:
    """The text of the element marked data-figure=name."""
    found = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert found, f"figure {name} not on the page"
    return found.group(1).strip()


async def customer_page(stack: Stack, customer: str, query: str = "") -> str:
    """The console's customer page as acme's HQ sees it."""
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/customers/{customer}{query}")
        assert status == 200
    finally:
        await console.close()
    return str(html)
