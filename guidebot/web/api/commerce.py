"""Admin JSON API for commerce: links, orders, commissions, store and value reports."""

from __future__ import annotations

from aiohttp import web

from guidebot import idempotency
from guidebot.commerce import statements
from guidebot.commerce.links import LinkRequest
from guidebot.commerce.service import CommerceService
from guidebot.settings import TenantSettings
from guidebot.web.api import parsing, shapes
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.audit_trail import nothing_done
from guidebot.web.keys import SERVICES


def _commerce(request: web.Request) -> CommerceService:
    return request.app[SERVICES].commerce


def _tenant(request: web.Request) -> TenantSettings:
    return _commerce(request).tenant(request.match_info["tenant"])


async def post_link(request: web.Request) -> web.Response:
    commerce, tenant = _commerce(request), _tenant(request)
    data = await parsing.body(request, shapes.LinkCreate)
    replayed = await idempotency.stored(commerce.db, tenant.id, "links", data.key, data)
    if replayed is not None:  # the stored answer: nothing done now
        nothing_done(request)
        return reply(replayed)
    link = await commerce.links.create(tenant, LinkRequest(
        guide=data.guide, sku=data.sku, page=data.page, campaign=data.campaign,
        customer=data.customer, title=data.title, pic_media_id=data.pic_media_id))
    await idempotency.remember(commerce.db, tenant.id, "links", data.key, data, link)
    return reply(link, status=201)


async def get_order(request: web.Request) -> web.Response:
    order_no = parsing.path(request, shapes.OrderPath).order_no
    return reply(await statements.order_view(_commerce(request).db, _tenant(request), order_no))


async def get_statements(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.StatementQuery)
    body = await statements.statement(_commerce(request).db, _tenant(request), q.period)
    if q.format == "csv":
        return web.Response(text=statements.to_csv(body), content_type="text/csv")
    return reply(body)


async def post_settle(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.SettleQuery)
    return reply(await _commerce(request).ledger.settle(_tenant(request), q.period,
                                                        q.operator or "admin-api"))


async def post_adjustment(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.AdjustmentCreate)
    body, created = await _commerce(request).ledger.adjust(
        _tenant(request), guide=data.guide, amount_fen=data.amount_fen, reason=data.reason,
        operator=data.operator, key=data.key or "")
    return reply(body, status=201 if created else 200)


async def get_store_report(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.PeriodQuery)
    return reply(await statements.store_report(_commerce(request).db, _tenant(request),
                                               q.period))


async def get_value(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.PeriodQuery)
    return reply(await _commerce(request).value_report(_tenant(request), q.period))


_CONFLICT = {409: "the key was used with another body (`stored` holds the result)"}
API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("POST", f"{API}/links", post_link,
             "A tracked mini-program link: {token, page, card}; only guide is required",
             shapes.Link, body=shapes.LinkCreate, status=201, errors=_CONFLICT),
    Endpoint("GET", f"{API}/orders/{{order_no}}", get_order,
             "An order with its attribution rule, evidence, rule version, refunds and ledger",
             shapes.Order, params=shapes.OrderPath),
    Endpoint("GET", f"{API}/commissions/statements", get_statements,
             "Commission statements of a period (format=csv for CSV, formulas escaped)",
             shapes.Statement, query=shapes.StatementQuery),
    Endpoint("POST", f"{API}/commissions/settle", post_settle, "Lock a period",
             shapes.Settled, query=shapes.SettleQuery, errors={409: "already settled"}),
    Endpoint("POST", f"{API}/commissions/adjustments", post_adjustment,
             "A manual ledger adjustment with reason and operator (guide must exist)",
             shapes.Adjustment, body=shapes.AdjustmentCreate, status=201, errors=_CONFLICT),
    Endpoint("GET", f"{API}/commissions/stores", get_store_report,
             "Store-credited orders (no guide commission) paid in a period",
             shapes.StoreReport, query=shapes.PeriodQuery),
    Endpoint("GET", f"{API}/commerce/value", get_value,
             "First purchases and repurchases per guide and store", shapes.ValueReport,
             query=shapes.PeriodQuery),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]


def install(app: web.Application) -> None:
    """Add the routes and version each tenant's commission rules at start."""
    app.add_routes(routes())

    async def record_rules(app: web.Application) -> None:
        await app[SERVICES].commerce.record_rules()

    app.on_startup.append(record_rules)
