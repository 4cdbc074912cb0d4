"""The sidebar's JSON: the agentConfig signature, the customer card, tag edits, follow-up notes,
profile fields (客户资料), the guide's WeCom remark, product cards.

Every route needs the guide's session for this tenant (401 without one) and every POST its
CSRF header (403); a customer the guide does not actively follow answers 404; a request the
record's present state refuses (StateConflict, e.g. sending a material that is not approved)
answers 409, as the admin API does.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from guidebot.errors import NotFound, Refusal, StateConflict, ValidationFailed, WeComError
from guidebot.services import Services
from guidebot.settings import TenantSettings
from guidebot.sidebar.service import SidebarService
from guidebot.web.keys import SERVICES
from guidebot.web.pages import sidebar_session as sessions

Guarded = Callable[[web.Request, TenantSettings, str], Awaitable[web.Response]]


def _error(status: int, message: str, /, *, code: str, **params: object) -> web.Response:
    """`error` the English detail (for API clients), `code` and `params` what the page words
    in Chinese: the console catalog's `refusal.<code>` (sidebar.html's sb-refusals)."""
    body = {"error": message, "code": code, "params": {k: str(v) for k, v in params.items()}}
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def refused(status: int, exc: Refusal) -> web.Response:
    """A refusal raised below; one raised without a code still answers one (a last resort:
    every refusal the sidebar's requests can meet is raised with its own)."""
    if not exc.code:
        exc = (NotFound(str(exc), code="sidebar.not_found") if isinstance(exc, NotFound)
               else ValidationFailed(str(exc), code="sidebar.refused"))
    return _error(status, str(exc), code=exc.code, **exc.params)


def wecom_refused(api: str, exc: WeComError) -> web.Response:
    return _error(502, f"WeCom refused {api}: errcode {exc.errcode}", code="sidebar.wecom",
                  api=api, errcode=exc.errcode)


def _sidebar(services: Services) -> SidebarService:
    return services.sidebar


def guarded(view: Guarded, *, post: bool = False) -> Callable[[web.Request],
                                                                Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        tenant = request.app[SERVICES].settings.tenants.get(request.match_info["tenant"])
        if tenant is None:
            return _error(404, "unknown tenant", code="sidebar.tenant_unknown")
        session = sessions.current(request, tenant)
        if session is None:
            return _error(401, "no sidebar session for this tenant: open the sidebar again",
                          code="sidebar.signed_out")
        if post and not sessions.csrf_ok(request, tenant, session):
            return _error(403, "missing or wrong CSRF token", code="sidebar.csrf")
        try:
            return await view(request, tenant, session.guide)
        except NotFound as exc:
            return refused(404, exc)
        except StateConflict as exc:
            return refused(409, exc)
        except ValidationFailed as exc:
            return refused(400, exc)
    return handler


async def signature(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    url = request.query.get("url", "")
    if not url.startswith(("http://", "https://")):
        return _error(400, "url: the page's full URL is required", code="sidebar.url")
    try:
        signed = await _sidebar(request.app[SERVICES]).tickets.sign(tenant, url)
    except WeComError as exc:
        return wecom_refused("ticket/get", exc)
    return web.json_response(signed, headers={"Cache-Control": "no-store"})


async def customer(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    body = await _sidebar(request.app[SERVICES]).customer(
        tenant, guide, request.match_info["external_userid"])
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationFailed("body: must be JSON", code="sidebar.body") from None
    if not isinstance(data, dict):
        raise ValidationFailed("body: must be a JSON object", code="sidebar.body")
    return data


def _names(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationFailed(f"{key}: an array of tag names", code="sidebar.tag_names")
    return value


async def edit_tags(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    data = await json_object(request)
    outcome = await _sidebar(request.app[SERVICES]).edit_tags(
        tenant, guide, request.match_info["external_userid"],
        add=_names(data, "add"), remove=_names(data, "remove"))
    if outcome.no_relation:
        return _error(409, "WeCom refused mark_tag: no relation", code="sidebar.no_relation")
    if outcome.status != "done":
        return _error(502, "WeCom refused mark_tag", code="sidebar.mark_tag")
    return await customer(request, tenant, guide)


async def add_note(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    """跟进记录: {text (1–500 characters), follow_up_on (YYYY-MM-DD, optional)}; answers the
    customer card with the note listed (201); 400 names the field, nothing stored."""
    data = await json_object(request)
    await _sidebar(request.app[SERVICES]).add_note(
        tenant, guide, request.match_info["external_userid"], data.get("text"),
        data.get("follow_up_on"))
    answer = await customer(request, tenant, guide)
    answer.set_status(201)
    return answer


async def set_fields(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    """客户资料: {values: {field id: value | null}}; the customer card (200); 400 names the
    field with its code (profile.*), nothing stored."""
    data = await json_object(request)
    await _sidebar(request.app[SERVICES]).set_fields(
        tenant, guide, request.match_info["external_userid"], data.get("values"))
    return await customer(request, tenant, guide)


async def set_remark(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    """The guide's WeCom remark and description: {remark, description} (empty clears); the
    customer card (200); WeCom's refusal is a 502 with its errcode, nothing stored."""
    data = await json_object(request)
    try:
        await _sidebar(request.app[SERVICES]).set_remark(
            tenant, guide, request.match_info["external_userid"], data.get("remark"),
            data.get("description"))
    except WeComError as exc:
        return wecom_refused("remark", exc)
    return await customer(request, tenant, guide)


async def card(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    sku = (await json_object(request)).get("sku")
    if not isinstance(sku, str) or not sku:
        raise ValidationFailed("sku: required string", code="sidebar.sku")
    body = await _sidebar(request.app[SERVICES]).card(
        tenant, guide, request.match_info["external_userid"], sku)
    return web.json_response(body, status=201, headers={"Cache-Control": "no-store"})


def routes() -> list[web.RouteDef]:
    base = "/sidebar/{tenant}"
    return [
        web.get(f"{base}/signature", guarded(signature)),
        web.get(f"{base}/customer/{{external_userid}}", guarded(customer)),
        web.post(f"{base}/customer/{{external_userid}}/tags", guarded(edit_tags, post=True)),
        web.post(f"{base}/customer/{{external_userid}}/card", guarded(card, post=True)),
        web.post(f"{base}/customer/{{external_userid}}/notes", guarded(add_note, post=True)),
        web.post(f"{base}/customer/{{external_userid}}/fields",
                 guarded(set_fields, post=True)),
        web.post(f"{base}/customer/{{external_userid}}/remark",
                 guarded(set_remark, post=True)),
    ]
