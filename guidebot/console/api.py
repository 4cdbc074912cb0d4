"""Admin JSON API routes (DESIGN §5.3): customers, guides, channel codes, OpenAPI."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from guidebot.console.openapi import openapi_document
from guidebot.contacts import views
from guidebot.errors import NotFound, ValidationFailed, WeComError
from guidebot.services import Services

SERVICES = web.AppKey("services", Services)


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _tenant(request: web.Request) -> Any:
    return _services(request).settings.tenant(request.match_info["tenant"])


async def get_customer(request: web.Request) -> web.Response:
    try:
        body = await views.customer_view(_services(request).db, _tenant(request),
                                         request.match_info["external_userid"])
    except NotFound as exc:
        return web.json_response({"error": str(exc)}, status=404)
    return web.json_response(body)


async def get_guides(request: web.Request) -> web.Response:
    return web.json_response(await views.guides_view(_services(request).db, _tenant(request)))


async def list_channels(request: web.Request) -> web.Response:
    codes = await views.channels_view(_services(request).db, _tenant(request))
    return web.json_response(codes)


async def create_channel(request: web.Request) -> web.Response:
    try:
        data = await request.json()
    except json.JSONDecodeError:
        return web.json_response({"error": "body must be JSON"}, status=400)
    if not isinstance(data, dict) or not isinstance(data.get("guide"), str) or not data["guide"]:
        return web.json_response({"error": "guide: required string"}, status=400)
    try:
        code = await _services(request).channels.create(
            request.match_info["tenant"], guide=data["guide"], store=data.get("store"),
            campaign=str(data.get("campaign") or ""), tags=list(data.get("tags") or []),
            welcome_message=str(data.get("welcome_message") or ""))
    except ValidationFailed as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except WeComError as exc:
        return web.json_response({"error": f"WeCom refused: errcode {exc.errcode}"}, status=502)
    return web.json_response(views.channel_json(code), status=201)


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/openapi.json", get_openapi),
        web.get("/api/v1/{tenant}/customers/{external_userid}", get_customer),
        web.get("/api/v1/{tenant}/guides", get_guides),
        web.get("/api/v1/{tenant}/channels", list_channels),
        web.post("/api/v1/{tenant}/channels", create_channel),
    ]
