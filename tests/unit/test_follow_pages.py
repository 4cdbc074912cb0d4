"""read_contact against a local WeCom that pages follow_user badly: a cursor answered again, a
cursor that never ends, a guide on two pages, a page that fails. The sandbox pages correctly
(tests/scenario/test_follow_pages.py); these are the answers it never gives."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from guidebot.contacts.profiles import read_contact
from guidebot.errors import WeComApiError
from guidebot.settings import TenantSettings
from guidebot.wecom.client import BackoffConfig, InMemoryTokenStore, WeComClient

NAME = "许诺"  # the customer's name: never logged
FAST = BackoffConfig(base_s=0.01, factor=2.0, max_s=0.05, attempts=1, jitter=0.0)


def _page(follows: list[dict[str, Any]], next_cursor: str) -> web.Response:
    return web.json_response({
        "errcode": 0, "errmsg": "ok",
        "external_contact": {"external_userid": "wmX", "name": NAME, "type": 1},
        "follow_user": follows, "next_cursor": next_cursor})


def _answer(customer: str, cursor: str) -> web.Response:
    page = int(cursor or "0")
    if customer == "wmREPEAT":  # the same cursor again: would loop for ever
        return _page([{"userid": f"g{page}", "remark": f"r{page}"}], "1")
    if customer == "wmENDLESS":  # a new cursor every time
        return _page([{"userid": f"g{page}", "remark": f"r{page}"}], str(page + 1))
    if customer == "wmTWICE":
        if page == 0:
            return _page([{"userid": "g1", "remark": "一"}, {"userid": "g2", "remark": "旧"}], "1")
        return _page([{"userid": "g2", "remark": "新"}, {"remark": "nobody"},
                      {"userid": "g3", "remark": "三"}], "")
    if page == 0:  # wmBROKEN: the second page fails
        return _page([{"userid": "g1", "remark": "一"}], "1")
    return web.json_response({"errcode": 40003, "errmsg": "invalid external userid"})


@pytest.fixture
async def wecom(aiohttp_server: Any) -> AsyncIterator[tuple[WeComClient, list[str]]]:
    cursors: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        if request.match_info["path"] == "gettoken":
            return web.json_response({"errcode": 0, "access_token": "t", "expires_in": 7200})
        assert request.match_info["path"] == "externalcontact/get"
        cursors.append(request.query.get("cursor", ""))
        return _answer(request.query["external_userid"], request.query.get("cursor", ""))

    app = web.Application()
    app.router.add_get("/cgi-bin/{path:.*}", handle)
    server = await aiohttp_server(app)
    tenant = TenantSettings(id="pages", corp_id="wwpages001", agent_id=1000002, token="QDG6eK",
                            encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                            secret="s3cr3t", admin_token="admin-pages-token",
                            api_base=str(server.make_url("/cgi-bin/")))
    client = WeComClient(tenant, tokens=InMemoryTokenStore(), backoff=FAST)
    yield client, cursors
    await client.close()


def _remarks(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["userid"], f["remark"]) for f in answer["follow_user"]]


async def test_a_repeated_cursor_stops_the_read(wecom: tuple[WeComClient, list[str]],
                                                caplog: pytest.LogCaptureFixture) -> None:
    client, cursors = wecom
    with caplog.at_level(logging.INFO, logger="guidebot.contacts.profiles"):
        answer = await read_contact(client, "pages", "wmREPEAT")
    assert cursors == ["", "1"]
    assert _remarks(answer) == [("g0", "r0"), ("g1", "r1")] and answer["next_cursor"] == ""
    assert "cursor repeated" in caplog.text and "customer=wmREPEAT" in caplog.text
    assert NAME not in caplog.text


async def test_a_cursor_that_never_ends_stops_at_the_page_limit(
        wecom: tuple[WeComClient, list[str]], caplog: pytest.LogCaptureFixture) -> None:
    client, cursors = wecom
    with caplog.at_level(logging.INFO, logger="guidebot.contacts.profiles"):
        answer = await read_contact(client, "pages", "wmENDLESS", max_pages=5)
    assert cursors == ["", "1", "2", "3", "4"]
    assert _remarks(answer) == [(f"g{i}", f"r{i}") for i in range(5)]
    assert "page limit" in caplog.text and NAME not in caplog.text


async def test_pages_are_merged_the_later_entry_of_a_guide_kept(
        wecom: tuple[WeComClient, list[str]]) -> None:
    client, cursors = wecom
    answer = await read_contact(client, "pages", "wmTWICE")
    assert cursors == ["", "1"]
    assert _remarks(answer) == [("g1", "一"), ("g2", "新"), ("g3", "三")]
    assert answer["external_contact"]["name"] == NAME and answer["next_cursor"] == ""


async def test_a_failing_page_fails_the_read(wecom: tuple[WeComClient, list[str]]) -> None:
    client, cursors = wecom
    with pytest.raises(WeComApiError) as failed:
        await read_contact(client, "pages", "wmBROKEN")
    assert failed.value.errcode == 40003 and cursors == ["", "1"]
