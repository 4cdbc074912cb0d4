"""aiohttp views for /wecom/{tenant}/callback: verify, decrypt, validate, store, 200."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from guidebot.errors import CallbackRejected
from guidebot.wecom.crypto import CallbackCrypto
from guidebot.wecom.parse import parse_fields
from guidebot.wecom.xml import UnsafeOrInvalidXml

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
Accept = Callable[[str, str], Awaitable[object]]
OnReject = Callable[[str, int], None]  # (tenant, HTTP status)


class CallbackViews:
    """Holds each tenant's crypto and the function that stores an accepted payload."""

    def __init__(self, cryptos: Mapping[str, CallbackCrypto], accept: Accept,
                 on_reject: OnReject | None = None) -> None:
        self._cryptos = cryptos
        self._accept = accept
        self._on_reject = on_reject

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wecom/{tenant}/callback", self.verify_url),
                web.post("/wecom/{tenant}/callback", self.receive)]

    async def verify_url(self, request: web.Request) -> web.Response:
        tenant, crypto = self._tenant(request)
        q = request.query  # aiohttp URL-decodes: the signature is over the decoded echostr
        try:
            plaintext = crypto.verify_url(*_params(q, "msg_signature", "timestamp", "nonce",
                                                   "echostr"))
        except CallbackRejected as exc:
            return self._reject(tenant, exc)
        return web.Response(body=plaintext.encode("utf-8"), content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        tenant, crypto = self._tenant(request)
        try:
            body = await _read_limited(request)
            plaintext = crypto.decrypt_body(
                body, *_params(request.query, "msg_signature", "timestamp", "nonce"))
            _validate_plaintext(plaintext)
        except CallbackRejected as exc:
            return self._reject(tenant, exc)
        await self._accept(tenant, plaintext)
        return web.Response(status=200, body=b"")

    def _reject(self, tenant: str, exc: CallbackRejected) -> web.Response:
        if self._on_reject is not None:
            self._on_reject(tenant, exc.status)
        return _reject(tenant, exc)

    def _tenant(self, request: web.Request) -> tuple[str, CallbackCrypto]:
        tenant = request.match_info["tenant"]
        crypto = self._cryptos.get(tenant)
        if crypto is None:
            raise web.HTTPNotFound(text="unknown tenant")
        return tenant, crypto


def _params(query: Mapping[str, str], *names: str) -> tuple[str, ...]:
    missing = [n for n in names if not query.get(n)]
    if missing:
        raise CallbackRejected(400, f"missing query parameter(s): {', '.join(missing)}")
    return tuple(query[n] for n in names)


async def _read_limited(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise CallbackRejected(413, "body larger than 64 KiB")
    body = bytearray()
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(body)):
        body += chunk  # read() returns what is buffered: loop until EOF or over the limit
        if len(body) > MAX_BODY_BYTES:
            raise CallbackRejected(413, "body larger than 64 KiB")
    return bytes(body)


def _validate_plaintext(plaintext: str) -> None:
    try:
        parse_fields(plaintext)
    except UnsafeOrInvalidXml as exc:
        raise CallbackRejected(400, f"decrypted payload is not acceptable XML ({exc})") from None


def _reject(tenant: str, exc: CallbackRejected) -> web.Response:
    log.warning("callback rejected tenant=%s status=%s reason=%s", tenant, exc.status, exc.reason)
    return web.Response(status=exc.status, text=exc.reason)
