"""Admin JSON API for commerce: links, orders, commissions, store and value reports."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from guidebot.commerce import periods, statements
from guidebot.commerce.ledger import PeriodSettled
from guidebot.commerce.links import LinkRequest
from guidebot.commerce.service import CommerceService
from guidebot.errors import NotFound, ValidationFailed
from guidebot.services import Services
from guidebot.web.keys import SERVICES

log = logging.getLogger(__name__)


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _commerce(request: web.Request) -> CommerceService:
    return _services(request).commerce


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise ValidationFailed("body must be JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object")
    return data


def _str(data: dict[str, Any], key: str, required: bool = False) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{key}: required string")
        return ""
    if not isinstance(value, str) or len(value) > 128:
        raise ValidationFailed(f"{key}: must be a string of at most 128 characters")
    return value


async def post_link(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    data = await _json(request)
    req = LinkRequest(guide=_str(data, "guide", True), sku=_str(data, "sku"),
                      page=_str(data, "page"), campaign=_str(data, "campaign"),
                      customer=_str(data, "customer") or None, title=_str(data, "title"),
                      pic_media_id=_str(data, "pic_media_id"))
    link = await commerce.links.create(commerce.tenant(request.match_info["tenant"]), req)
    return web.json_response(link, status=201)


async def get_order(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    body = await statements.order_view(commerce.db, commerce.tenant(request.match_info["tenant"]),
                                       request.match_info["order_no"])
    return web.json_response(body)


def _period(request: web.Request) -> str:
    period = request.query.get("period", "")
    periods.parse(period)
    return period


async def get_statements(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    tenant = commerce.tenant(request.match_info["tenant"])
    body = await statements.statement(commerce.db, tenant, _period(request))
    if request.query.get("format") == "csv":
        return web.Response(text=statements.to_csv(body), content_type="text/csv")
    return web.json_response(body)


async def post_settle(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    operator = request.query.get("operator", "") or "admin-api"
    body = await commerce.ledger.settle(commerce.tenant(request.match_info["tenant"]),
                                        _period(request), operator)
    return web.json_response(body)


async def post_adjustment(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    data = await _json(request)
    amount = data.get("amount_fen")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValidationFailed("amount_fen: must be an integer")
    body = await commerce.ledger.adjust(
        commerce.tenant(request.match_info["tenant"]), guide=_str(data, "guide", True),
        amount_fen=amount, reason=_str(data, "reason", True),
        operator=_str(data, "operator", True), key=_str(data, "key"))
    return web.json_response(body, status=201)


async def get_store_report(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    tenant = commerce.tenant(request.match_info["tenant"])
    return web.json_response(await statements.store_report(commerce.db, tenant,
                                                            _period(request)))


async def get_value(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    tenant = commerce.tenant(request.match_info["tenant"])
    return web.json_response(await commerce.value_report(tenant, _period(request)))


async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except PeriodSettled as exc:
        return _error(409, str(exc))
    except ValidationFailed as exc:
        return _error(400, str(exc))
    except NotFound as exc:
        return _error(404, str(exc))


def _guarded(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        return await _errors(request, handler)

    return wrapped


def routes() -> list[web.RouteDef]:
    api = "/api/v1/{tenant}"
    return [
        web.post(f"{api}/links", _guarded(post_link)),
        web.get(f"{api}/orders/{{order_no}}", _guarded(get_order)),
        web.get(f"{api}/commissions/statements", _guarded(get_statements)),
        web.post(f"{api}/commissions/settle", _guarded(post_settle)),
        web.post(f"{api}/commissions/adjustments", _guarded(post_adjustment)),
        web.get(f"{api}/commissions/stores", _guarded(get_store_report)),
        web.get(f"{api}/commerce/value", _guarded(get_value)),
    ]


def install(app: web.Application) -> None:
    """Add the routes and version each tenant's commission rules at start."""
    app.add_routes(routes())

    async def record_rules(app: web.Application) -> None:
        await app[SERVICES].commerce.record_rules()

    app.on_startup.append(record_rules)
