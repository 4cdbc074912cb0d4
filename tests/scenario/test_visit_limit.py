"""The visit beacon limited per client address over HTTP: the 61st visit of a minute from
one address is answered 429 with Retry-After and stores no touch, another address is still
counted, and the next minute (the injected clock) lets it through again."""

from __future__ import annotations

from typing import Any

import pytest

from guidebot.web.visit_limit import VISITS
from tests.support.metrics import scrape, value
from tests.support.stack import Stack, start_stack

PER_MINUTE = 60  # the default
HOME, OTHER = "198.51.100.7", "198.51.100.8"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * 60.0 + 15  # 15 s into a minute

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def proxied(aiohttp_server: Any, tmp_path: Any, db_url: str) -> Any:
    stack = await start_stack(aiohttp_server, tmp_path, db_url,
                              config_extra='[server]\nclient_ip_header = "X-Real-IP"\n'
                                           'beacon_per_minute = 60\n')
    stack.app[VISITS].clock = Clock()
    yield stack
    await stack.http.close()


async def _visit(stack: Stack, token: str, address: str) -> tuple[int, str]:
    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              headers={"X-Real-IP": address}) as resp:
        return resp.status, resp.headers.get("Retry-After", "")


async def _touches(stack: Stack) -> int:
    from sqlalchemy import func, select

    from guidebot.db.models_commerce import Touch

    async with stack.runtime.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(Touch))).scalar_one())


async def test_the_61st_visit_of_a_minute_from_one_address_is_refused(proxied: Stack) -> None:
    stack = proxied
    _, link = await stack.admin("/links", method="POST", json={"guide": "lina", "title": "x"})
    token = link["token"]
    for _ in range(PER_MINUTE):
        assert (await _visit(stack, token, HOME))[0] == 204
    assert await _touches(stack) == PER_MINUTE
    assert await _visit(stack, token, HOME) == (429, "45")  # 45 s left of the minute
    assert await _visit(stack, "unknown-token", HOME) == (429, "45")
    assert await _touches(stack) == PER_MINUTE  # nothing written
    assert (await _visit(stack, token, OTHER))[0] == 204  # another address still counted
    assert await _touches(stack) == PER_MINUTE + 1
    clock = stack.app[VISITS].clock
    assert isinstance(clock, Clock)
    clock.now += 45  # the next minute
    assert (await _visit(stack, token, HOME))[0] == 204
    assert await _touches(stack) == PER_MINUTE + 2
    assert value(await scrape(stack), "guidebot_visits_throttled_total") == 2


async def test_the_oldest_address_is_forgotten_past_the_cap(proxied: Stack) -> None:
    stack = proxied
    stack.app[VISITS].per_minute, stack.app[VISITS].cap = 1, 2
    _, link = await stack.admin("/links", method="POST", json={"guide": "lina", "title": "x"})
    token = link["token"]
    assert (await _visit(stack, token, HOME))[0] == 204
    assert (await _visit(stack, token, HOME))[0] == 429
    assert (await _visit(stack, token, OTHER))[0] == 204
    assert (await _visit(stack, token, HOME))[0] == 429  # two kept
    assert (await _visit(stack, token, "198.51.100.9"))[0] == 204
    assert (await _visit(stack, token, HOME))[0] == 204  # the oldest dropped


async def test_zero_turns_the_limit_off(proxied: Stack) -> None:
    stack = proxied
    stack.app[VISITS].per_minute = 0
    _, link = await stack.admin("/links", method="POST", json={"guide": "lina", "title": "x"})
    for _ in range(PER_MINUTE + 5):
        assert (await _visit(stack, link["token"], HOME))[0] == 204
    assert await _touches(stack) == PER_MINUTE + 5
