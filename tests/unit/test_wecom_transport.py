"""The WeCom transport against a local server that misbehaves: HTTP errors, bodies that are
not JSON objects, errcodes as typed errors, and no URL (token, secret) in any error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from guidebot.errors import WeComApiError, WeComTokenError, WeComTransportError
from guidebot.wecom.client import error_for
from guidebot.wecom.transport import Transport

TOKEN = "token-not-to-leak"


async def _serve(aiohttp_server: Any, answers: dict[str, web.Response]) -> Transport:
    async def answer(request: web.Request) -> web.Response:
        if request.match_info["path"] == "echo":
            return web.json_response({"errcode": 0, "query": dict(request.query),
                                      "body": json.loads(await request.read())})
        return answers[request.match_info["path"]]

    app = web.Application()
    app.router.add_route("*", "/cgi-bin/{path:.*}", answer)
    server = await aiohttp_server(app)
    return Transport(str(server.make_url("/cgi-bin/")), 5.0, error_for)


async def test_json_goes_out_as_utf8_and_comes_back(aiohttp_server: Any) -> None:
    http = await _serve(aiohttp_server, {})
    result = await http.call("POST", "echo", params={"access_token": TOKEN},
                             body={"text": {"content": "新品到店"}})
    assert result["body"] == {"text": {"content": "新品到店"}}
    assert result["query"] == {"access_token": TOKEN}
    await http.close()


@pytest.mark.parametrize(("answer", "reason"), [
    (web.Response(status=502, text="bad gateway"), "HTTP 502"),
    (web.Response(text="<html>not json</html>"), "response is not JSON"),
    (web.json_response([1, 2]), "response is not a JSON object"),
    (web.json_response({"errcode": "x"}), "errcode is not a number"),
])
async def test_what_is_not_a_wecom_answer_is_a_transport_error(
        aiohttp_server: Any, answer: web.Response, reason: str) -> None:
    http = await _serve(aiohttp_server, {"externalcontact/get": answer})
    with pytest.raises(WeComTransportError) as info:
        await http.call("GET", "externalcontact/get", params={"access_token": TOKEN})
    assert info.value.errmsg == reason and info.value.path == "externalcontact/get"
    assert TOKEN not in str(info.value) and info.value.__cause__ is None
    await http.close()


async def test_errcodes_become_their_error_types(aiohttp_server: Any) -> None:
    http = await _serve(aiohttp_server, {
        "expired": web.json_response({"errcode": 42001, "errmsg": "access_token expired"}),
        "nope": web.json_response({"errcode": 84061, "errmsg": "not external contact"})})
    with pytest.raises(WeComTokenError):
        await http.call("GET", "expired", params={"access_token": TOKEN})
    with pytest.raises(WeComApiError) as info:
        await http.call("GET", "nope", params={"access_token": TOKEN})
    assert info.value.errcode == 84061
    await http.close()
