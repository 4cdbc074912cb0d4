"""Admin JSON API routes (DESIGN §5.3): customers, guides, channel codes, OpenAPI."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from guidebot.commerce.views import customer_card
from guidebot.contacts import views
from guidebot.errors import NotFound, ValidationFailed, WeComError
from guidebot.services import Services
from guidebot.web.api.openapi import openapi_document
from guidebot.web.keys import SERVICES

NO_RELATION = 84061  # FACTS §3.12: the guide and customer have no follow relation


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _tenant(request: web.Request) -> Any:
    return _services(request).settings.tenant(request.match_info["tenant"])


async def get_customer(request: web.Request) -> web.Response:
    try:
        body = await customer_card(_services(request).db, _tenant(request),
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
    data = await _json_object(request)
    if isinstance(data, web.Response):
        return data
    if not isinstance(data.get("guide"), str) or not data["guide"]:
        return _error(400, "guide: required string")
    if not _names(data.get("tags", [])):
        return _error(400, "tags: an array of tag names")
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


async def edit_customer_tags(request: web.Request) -> web.Response:
    data = await _json_object(request)
    if isinstance(data, web.Response):
        return data
    guide, add, remove = data.get("guide"), data.get("add", []), data.get("remove", [])
    if not isinstance(guide, str) or not guide:
        return _error(400, "guide: required string (the guide whose relation is tagged)")
    if not _names(add) or not _names(remove):
        return _error(400, "add/remove: arrays of tag names")
    tenant, customer = request.match_info["tenant"], request.match_info["external_userid"]
    try:
        outcome = await _services(request).tags.edit(
            tenant, guide=guide, external_userid=customer, add=add, remove=remove)
    except ValidationFailed as exc:
        return _error(400, str(exc))
    if outcome.status != "done":
        return _error(409 if (outcome.result or {}).get("errcode") == NO_RELATION else 502,
                      f"WeCom refused mark_tag: {outcome.error}")
    return await get_customer(request)


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        data = await request.json()
    except json.JSONDecodeError:
        return _error(400, "body must be JSON")
    return data if isinstance(data, dict) else _error(400, "body must be a JSON object")


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/openapi.json", get_openapi),
        web.get("/api/v1/{tenant}/customers/{external_userid}", get_customer),
        web.get("/api/v1/{tenant}/guides", get_guides),
        web.get("/api/v1/{tenant}/channels", list_channels),
        web.post("/api/v1/{tenant}/channels", create_channel),
        web.post("/api/v1/{tenant}/customers/{external_userid}/tags", edit_customer_tags),
    ]
