"""Hostile and broken callbacks against the real stack: 4xx, nothing stored, nothing leaked."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from yarl import URL

from guidebot.settings import TenantSettings
from tests.support.metrics import scrape, value
from tests.support.stack import Stack
from tests.support.wecom import SignedCallback, add_contact_xml, encrypt_callback

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
# unique markers that only exist inside the encrypted plaintext of the requests below
SECRET_GUIDE = "guideSECRETmarker7"
SECRET_EXTERNAL = "wmPLAINTEXTmarker0000000042"
SECRET_WELCOME = "WC-PLAINTEXT-marker-42"
NEVER_LOGGED = (TOKEN, AES_KEY, SECRET_GUIDE, SECRET_EXTERNAL, SECRET_WELCOME)


def sign(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def encrypt_of(signed: SignedCallback) -> str:
    found = re.search(rb"<Encrypt><!\[CDATA\[([^\]]+)\]\]></Encrypt>", signed.body)
    assert found, signed.body
    return found.group(1).decode()


def secret_xml(tenant: TenantSettings, *, state: str = "", prolog: str = "") -> str:
    return prolog + add_contact_xml(corp_id=tenant.corp_id, guide=SECRET_GUIDE,
                                    external_userid=SECRET_EXTERNAL, state=state,
                                    welcome_code=SECRET_WELCOME)


def valid(stack: Stack, tenant: str = "acme", **kw: Any) -> SignedCallback:
    t = stack.tenant(tenant)
    return encrypt_callback(t, secret_xml(stack.tenant("acme")), **kw)


@dataclass
class Request:
    query: dict[str, str]
    body: bytes = b""
    tenant: str = "acme"
    method: str = "POST"
    chunked: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _resigned(stack: Stack, encrypted: str, body: bytes) -> Request:
    ts, nonce = str(int(time.time())), "4242"
    return Request({"msg_signature": sign(TOKEN, ts, nonce, encrypted), "timestamp": ts,
                    "nonce": nonce}, body)


def forged_signature(stack: Stack) -> Request:
    signed = valid(stack)
    sig = signed.query["msg_signature"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    return Request({**signed.query, "msg_signature": flipped}, signed.body)


def non_ascii_signature(stack: Stack) -> Request:
    signed = valid(stack)
    return Request({**signed.query, "msg_signature": "ü" * 40}, signed.body)


def stale_timestamp(stack: Stack) -> Request:
    signed = valid(stack, timestamp=int(time.time()) - 601)
    return Request(signed.query, signed.body)


def future_timestamp(stack: Stack) -> Request:
    # well past the 600 s window: the whole seconds dropped here and the time the request
    # takes to arrive both bring it closer to the server's clock (+601 failed on a busy box)
    signed = valid(stack, timestamp=int(time.time()) + 660)
    return Request(signed.query, signed.body)


def truncated_ciphertext(stack: Stack) -> Request:
    encrypted = encrypt_of(valid(stack))[:-8]
    return _resigned(stack, encrypted, f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode())


def truncated_ciphertext_to_whole_blocks(stack: Stack) -> Request:
    encrypted = encrypt_of(valid(stack))[:64]
    return _resigned(stack, encrypted, f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode())


XXE_PROLOG = '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
LOLS = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
LAUGHS_PROLOG = f'<!DOCTYPE xml [<!ENTITY lol0 "lol">{LOLS}]>'


def _hostile_envelope(stack: Stack, prolog: str, reference: str) -> Request:
    signed = valid(stack)  # genuine and correctly signed Encrypt: only the DTD is wrong
    body = (f"{prolog}<xml><ToUserName>{reference}</ToUserName>"
            f"<Encrypt><![CDATA[{encrypt_of(signed)}]]></Encrypt></xml>").encode()
    return Request(signed.query, body)


def xxe_envelope(stack: Stack) -> Request:
    return _hostile_envelope(stack, XXE_PROLOG, "&xxe;")


def billion_laughs_envelope(stack: Stack) -> Request:
    return _hostile_envelope(stack, LAUGHS_PROLOG, "&lol9;")


def xxe_in_encrypted_plaintext(stack: Stack) -> Request:
    t = stack.tenant()
    signed = encrypt_callback(t, secret_xml(t, state="&xxe;", prolog=XXE_PROLOG))
    return Request(signed.query, signed.body)


def billion_laughs_in_encrypted_plaintext(stack: Stack) -> Request:
    t = stack.tenant()
    signed = encrypt_callback(t, secret_xml(t, state="&lol9;", prolog=LAUGHS_PROLOG))
    return Request(signed.query, signed.body)


def non_xml_plaintext(stack: Stack) -> Request:
    t = stack.tenant()
    signed = encrypt_callback(t, f"not xml {SECRET_EXTERNAL} {SECRET_WELCOME}")
    return Request(signed.query, signed.body)


def non_xml_body(stack: Stack) -> Request:
    return Request(valid(stack).query, b"this is not xml at all")


def json_body(stack: Stack) -> Request:
    signed = valid(stack)
    return Request(signed.query, json.dumps({"Encrypt": encrypt_of(signed)}).encode())


def envelope_without_encrypt(stack: Stack) -> Request:
    return Request(valid(stack).query, b"<xml><ToUserName>wwacme5823bf96d3bd</ToUserName></xml>")


def one_mib_body(stack: Stack) -> Request:
    signed = valid(stack)
    return Request(signed.query, signed.body + b" " * (1024 * 1024 - len(signed.body)))


def one_mib_body_chunked(stack: Stack) -> Request:
    request = one_mib_body(stack)
    request.chunked = True
    return request


def _without(name: str) -> Callable[[Stack], Request]:
    def build(stack: Stack) -> Request:
        signed = valid(stack)
        return Request({k: v for k, v in signed.query.items() if k != name}, signed.body)

    build.__name__ = f"missing_{name}"
    return build


def no_query_at_all(stack: Stack) -> Request:
    return Request({}, valid(stack).body)


def unknown_tenant(stack: Stack) -> Request:
    signed = valid(stack)
    return Request(signed.query, signed.body, tenant="nosuchtenant")


def beta_signature_posted_to_acme(stack: Stack) -> Request:
    signed = encrypt_callback(stack.tenant("beta"), secret_xml(stack.tenant("beta")))
    return Request(signed.query, signed.body, tenant="acme")


def acme_signature_posted_to_beta(stack: Stack) -> Request:
    signed = valid(stack)
    return Request(signed.query, signed.body, tenant="beta")


def acme_key_but_other_corp_id(stack: Stack) -> Request:
    # same token and EncodingAESKey as acme, receive id of the official doc's corp
    signed = valid(stack, corp_id="wx5823bf96d3bd56c7")
    return Request(signed.query, signed.body)


def _get(stack: Stack, *, echostr_corp: str | None = None, drop: str = "",
         timestamp: int | None = None, flip: bool = False, tenant: str = "acme") -> Request:
    signed = encrypt_callback(stack.tenant(), "8934772655", timestamp=timestamp,
                              corp_id=echostr_corp)
    query = {**signed.query, "echostr": encrypt_of(signed)}
    if flip:
        sig = query["msg_signature"]
        query["msg_signature"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    query.pop(drop, None)
    return Request(query, method="GET", tenant=tenant)


def get_forged_signature(stack: Stack) -> Request:
    return _get(stack, flip=True)


def get_stale_timestamp(stack: Stack) -> Request:
    return _get(stack, timestamp=int(time.time()) - 601)


def get_missing_echostr(stack: Stack) -> Request:
    return _get(stack, drop="echostr")


def get_other_corp_id(stack: Stack) -> Request:
    return _get(stack, echostr_corp="wx5823bf96d3bd56c7")


def get_unknown_tenant(stack: Stack) -> Request:
    return _get(stack, tenant="nosuchtenant")


CASES: list[tuple[Callable[[Stack], Request], int]] = [
    (forged_signature, 403),
    (non_ascii_signature, 403),
    (stale_timestamp, 403),
    (future_timestamp, 403),
    (truncated_ciphertext, 400),
    (truncated_ciphertext_to_whole_blocks, 400),
    (xxe_envelope, 400),
    (billion_laughs_envelope, 400),
    (xxe_in_encrypted_plaintext, 400),
    (billion_laughs_in_encrypted_plaintext, 400),
    (non_xml_plaintext, 400),
    (non_xml_body, 400),
    (json_body, 400),
    (envelope_without_encrypt, 400),
    (one_mib_body, 413),
    (_without("msg_signature"), 400),
    (_without("timestamp"), 400),
    (_without("nonce"), 400),
    (no_query_at_all, 400),
    (unknown_tenant, 404),
    (beta_signature_posted_to_acme, 403),
    (acme_signature_posted_to_beta, 403),
    (acme_key_but_other_corp_id, 403),
    (get_forged_signature, 403),
    (get_stale_timestamp, 403),
    (get_missing_echostr, 400),
    (get_other_corp_id, 403),
    (get_unknown_tenant, 404),
]


async def send(stack: Stack, request: Request) -> tuple[int, str]:
    url = f"{stack.bot_url}/wecom/{request.tenant}/callback"
    data: Any = request.body
    if request.chunked:
        async def chunks() -> AsyncIterator[bytes]:
            for at in range(0, len(request.body), 16 * 1024):
                yield request.body[at:at + 16 * 1024]

        data = chunks()
    async with stack.http.request(request.method, url, params=request.query,
                                  data=data if request.method == "POST" else None,
                                  headers=request.headers) as resp:
        return resp.status, (await resp.read()).decode("utf-8", "replace")


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(lines)


async def _assert_nothing_stored(stack: Stack) -> None:
    await stack.runtime.drain()
    assert await stack.inbox_rows("acme") == []
    assert await stack.inbox_rows("beta") == []
    assert stack.runtime.counters["acme:accepted"] == 0
    assert stack.runtime.counters["beta:accepted"] == 0


@pytest.mark.parametrize(("build", "expected"), CASES, ids=[b.__name__ for b, _ in CASES])
async def test_rejected_callback_is_4xx_stores_nothing_and_leaks_nothing(
        stack: Stack, caplog: pytest.LogCaptureFixture, build: Callable[[Stack], Request],
        expected: int) -> None:
    request = build(stack)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    status, text = await send(stack, request)
    assert status == expected, f"{build.__name__}: {status} {text[:200]!r}"
    await _assert_nothing_stored(stack)
    assert caplog.records, "no log record captured: the leak check below would be vacuous"
    logged = _logged(caplog)
    if expected != 404:  # a known tenant: the rejection is logged and counted as its own
        assert text  # the reason, for whoever configures the callback
        assert f"callback rejected tenant={request.tenant} status={expected} reason={text}" in (
            caplog.messages), logged
        m = await scrape(stack)
        assert value(m, "guidebot_callbacks_total", tenant=request.tenant,
                     result=f"rejected_{expected}") == 1
    else:  # no such tenant: the answer says so
        assert text == "unknown tenant"
    for secret in NEVER_LOGGED:
        assert secret not in logged, f"{secret!r} appears in the logs"
        assert secret not in text, f"{secret!r} appears in the response"
    assert "8934772655" not in text


async def test_one_mib_chunked_body_is_refused(stack: Stack) -> None:
    status, _ = await send(stack, one_mib_body_chunked(stack))
    assert 400 <= status < 500
    await _assert_nothing_stored(stack)


async def test_one_mib_chunked_body_arriving_slowly_is_refused(stack: Stack) -> None:
    """Chunked, no Content-Length: the whole signed envelope first, then 1 MiB of padding.

    The padding is whitespace, so a reader that stops at the first chunk sees a valid callback.
    The body is 1 MiB all the same and must be refused with 413 like any other oversized body.
    """
    signed = valid(stack)
    url = URL(stack.bot_url)
    query = "&".join(f"{k}={v}" for k, v in signed.query.items())
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(f"POST /wecom/acme/callback?{query} HTTP/1.1\r\n"
                     f"Host: {url.host}:{url.port}\r\nContent-Type: text/xml\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode())
        writer.write(b"%x\r\n%s\r\n" % (len(signed.body), signed.body))
        await writer.drain()
        await asyncio.sleep(0.2)
        padding = b" " * (64 * 1024)
        try:
            for _ in range(16):
                writer.write(b"%x\r\n%s\r\n" % (len(padding), padding))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            pass  # the server may answer and close before reading the rest
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    status = int(raw.split(b" ", 2)[1])
    await stack.runtime.drain()
    stored = len(await stack.inbox_rows("acme"))
    assert (status, stored) == (413, 0), (
        f"1 MiB chunked body answered {status} and stored {stored} inbox row(s)")


async def test_the_replayed_2014_official_vector_is_refused(stack: Stack) -> None:
    # acme shares the doc's token and key; the documented request is far outside the window
    # (and was made for another corp id)
    query = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
             "timestamp": "1409659813", "nonce": "1372623149"}
    body = (b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
            b"RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHh"
            b"Gd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSk"
            b"nmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF"
            b"5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9"
            b"EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3f"
            b"VKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt>"
            b"<AgentID><![CDATA[218]]></AgentID></xml>")
    status, _ = await send(stack, Request(query, body))
    assert status == 403
    await _assert_nothing_stored(stack)


async def test_controls_valid_requests_are_accepted(stack: Stack) -> None:
    """The harness can see acceptance: without this, 'nothing stored' would prove little."""
    status, text = await send(stack, _get(stack))
    assert (status, text) == (200, "8934772655")
    signed = valid(stack)
    status, text = await send(stack, Request(signed.query, signed.body))
    assert (status, text) == (200, "")
    rows = await stack.inbox_rows("acme")
    assert len(rows) == 1 and SECRET_EXTERNAL in rows[0].payload
    assert await stack.inbox_rows("beta") == []


async def test_each_rejection_says_exactly_what_was_wrong(stack: Stack) -> None:
    """Whoever configures the callback reads the reason: the missing parameters by name, the
    body limit (announced by Content-Length or found while reading a chunked body)."""
    expected = [
        (no_query_at_all, 400, "missing query parameter(s): msg_signature, timestamp, nonce"),
        (_without("nonce"), 400, "missing query parameter(s): nonce"),
        (one_mib_body, 413, "body larger than 64 KiB"),
        (one_mib_body_chunked, 413, "body larger than 64 KiB"),
    ]
    for build, status, reason in expected:
        assert await send(stack, build(stack)) == (status, reason), build.__name__
