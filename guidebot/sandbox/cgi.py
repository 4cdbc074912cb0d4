"""The /cgi-bin/ front door: call log, faults, tokens, rate limits, then the API handler."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from guidebot.sandbox import errors
from guidebot.sandbox.api import (
    CALLBACKS_KEY,
    ROUTES,
    SETTLE_TRANSFERS_FIRST,
    UNMETERED,
    ApiCall,
    Upload,
    media,
)
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, Media
from guidebot.sandbox.sandbox import Sandbox
from guidebot.sandbox.webio import SANDBOX_KEY, json_response

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    body: Any  # parsed JSON object, or None
    upload: Upload | None = None
    bad_json: bool = False

    def logged(self) -> Any:
        if self.upload is None:
            return self.body
        return {"media": {"filename": self.upload.filename, "size": len(self.upload.data),
                          "content_type": self.upload.content_type}}


async def read(request: web.Request) -> Incoming:
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        part = form.get("media")
        if isinstance(part, web.FileField):
            return Incoming(None, Upload(part.filename, part.content_type, part.file.read()))
        return Incoming(None)
    raw = await request.read()
    if not raw.strip():
        return Incoming(None)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Incoming(None, bad_json=True)
    return Incoming(body) if isinstance(body, dict) else Incoming(None, bad_json=True)


def answer(sandbox: Sandbox, path: str, query: dict[str, str], incoming: Incoming,
           tenant: str | None) -> JSON:
    """Log the call of `tenant` (owner()), then answer it as WeCom would (errors as errcode
    bodies)."""
    now = sandbox.now()
    entry = sandbox.call_log.record(
        tenant=tenant, path=path, query=query, body=incoming.logged(), now=now)
    try:
        result = _dispatch(sandbox, path, query, incoming, tenant, now)
    except ApiError as exc:
        result = exc.body()
    entry["errcode"] = result["errcode"]
    log.debug("call %s tenant %s errcode %s", path, tenant, result["errcode"])
    return result


def owner(sandbox: Sandbox, path: str, query: dict[str, str]) -> str | None:
    """The tenant a call is made for (by its credentials or its access token), if known."""
    if path == "gettoken":
        return sandbox.tokens.tenant_for(query.get("corpid"), query.get("corpsecret"))
    return sandbox.tokens.owner(query.get("access_token"))


def _dispatch(
    sandbox: Sandbox, path: str, query: dict[str, str], incoming: Incoming, tenant: str | None,
    now: float,
) -> JSON:
    if path != "gettoken" and path not in ROUTES:
        raise ApiError(errors.UNKNOWN_PATH, f"the sandbox does not implement {path}")
    sandbox.faults.trip(tenant, path)
    if incoming.bad_json:
        raise ApiError(errors.BAD_JSON, "request body is not a JSON object")
    if path == "gettoken":
        if tenant is not None:
            _meter(sandbox, tenant, path, now)
        return sandbox.tokens.gettoken(query.get("corpid"), query.get("corpsecret"), now)
    state = sandbox.tenants[sandbox.tokens.check(query.get("access_token"), now)]
    if path not in UNMETERED:
        _meter(sandbox, state.id, path, now)
    call = ApiCall(state, query, incoming.body or {}, now, sandbox.options, incoming.upload)
    return ROUTES[path](call)


def _meter(sandbox: Sandbox, tenant: str, path: str, now: float) -> None:
    """FACTS §3.13: per corp per API per minute, else 45009."""
    settings = sandbox.tenants[tenant].settings
    if not sandbox.interceptor.allow((settings.corp_id, path), now,
                                     settings.quotas.api_calls_per_min):
        raise ApiError(errors.RATE_LIMITED)


async def handle(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    path = request.match_info["path"].strip("/")
    query, incoming = dict(request.query), await read(request)
    tenant = owner(sandbox, path, query)
    delay = sandbox.faults.delay(tenant, path)
    if delay:
        await asyncio.sleep(delay)  # a slow WeCom (an injected fault)
    if status := sandbox.faults.gateway(tenant, path):
        return web.Response(status=status, text="sandbox injected gateway failure")
    if tenant is not None and path in SETTLE_TRANSFERS_FIRST:
        await sandbox.settle_transfers(tenant)
    result = answer(sandbox, path, query, incoming, tenant)
    for fields in result.pop(CALLBACKS_KEY, ()):
        if tenant is not None:  # always: a handler answered, so the token was the tenant's
            await sandbox.emit(tenant, fields)
    file = result.get(media.FILE_KEY)
    if isinstance(file, Media):
        # media/get answers the file; the header names it like WeCom's download does [mem]
        return web.Response(body=file.data, content_type=file.content_type, headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"'})
    status = 404 if result["errcode"] == errors.UNKNOWN_PATH else 200
    return json_response(result, status)


def add_routes(router: web.UrlDispatcher) -> None:
    # WeCom documents GET or POST per API; the sandbox accepts either on every path and reads
    # each API's parameters from where WeCom documents them (query for GET APIs, body for POST).
    router.add_route("*", "/cgi-bin/{path:.+}", handle)
