"""GET /m/{tenant}: the mobile workbench (移动工作台), the phone page a brand puts in the app's
workbench entry in the WeCom client, for guides and store managers (店长).

It signs in exactly as the chat sidebar does (sidebar.py, sidebar_session.py: WeCom's OAuth2,
the member's userid in a signed session cookie), the cookie kept under /m/{tenant}. A guide
sees their figures over 本月 / 上月 / 近7天 with the month's targets, and today's to-dos (群发
tasks waiting for their confirmation, follow-ups due today or overdue, each customer linked to
/m/{tenant}/customer/{id}). A store manager sees, besides, one of their stores (?store=):
its figures and its guides ranked. A member who is neither gets a worded page; a store the
member does not manage is refused (403), whoever asks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from guidebot.errors import NotFound
from guidebot.settings import TenantSettings
from guidebot.stats import definitions
from guidebot.web.keys import SERVICES
from guidebot.web.pages import sidebar
from guidebot.web.pages import sidebar_session as sessions
from guidebot.workbench.service import Member

log = logging.getLogger(__name__)

_PAGES = Environment(loader=PackageLoader("guidebot", "templates"),
                     autoescape=select_autoescape(["html"]))


def base(tenant: TenantSettings) -> str:
    return f"/m/{tenant.id}"


def _tenant(request: web.Request) -> TenantSettings:
    tenant = request.app[SERVICES].settings.tenants.get(request.match_info["tenant"])
    if tenant is None:
        raise web.HTTPNotFound()
    return tenant


def _render(name: str, status: int = 200, **values: object) -> web.Response:
    html = _PAGES.get_template(name).render(yuan=definitions.yuan, **values)
    return web.Response(text=html, status=status, content_type="text/html",
                        headers=sidebar.HEADERS)


def _refusal(tenant: TenantSettings) -> Callable[[int, str], web.Response]:
    def refuse(status: int, key: str) -> web.Response:
        return _render("workbench_error.html", status, key=key, tenant=tenant.id)
    return refuse


async def _member(request: web.Request, tenant: TenantSettings
                  ) -> tuple[Member | None, web.StreamResponse | None]:
    """The signed-in member, or the response instead: WeCom's OAuth without a session (back
    to this page after it), the worded page for a member who is neither guide nor manager."""
    session = sessions.current(request, tenant)
    if session is None:
        return None, sidebar.to_oauth(request, tenant, back=request.rel_url.raw_path_qs,
                                      base=base(tenant))
    member = await request.app[SERVICES].workbench.member(tenant, session.guide)
    if not member.known:
        log.info("workbench refused tenant=%s member=%s: neither guide nor manager",
                 tenant.id, session.guide)
        return None, _render("workbench_error.html", 403, key="nobody", tenant=tenant.id)
    return member, None


def _back_to(request: web.Request, tenant: TenantSettings) -> str:
    """Where the sign-in returns: a page of this tenant's workbench, else the workbench."""
    back = request.cookies.get(sessions.NEXT_COOKIE, "")
    return back if back.startswith(f"{base(tenant)}/") or back.startswith(
        f"{base(tenant)}?") else base(tenant)


async def page(request: web.Request) -> web.StreamResponse:
    tenant = _tenant(request)
    if "code" in request.query:
        return await sidebar.sign_in(request, tenant, _back_to(request, tenant),
                                     base=base(tenant), refuse=_refusal(tenant))
    member, instead = await _member(request, tenant)
    if member is None:
        assert instead is not None
        return instead
    workbench = request.app[SERVICES].workbench
    span = workbench.span(tenant, request.query.get("range", ""))
    wanted = request.query.get("store", "")
    if wanted and wanted not in member.stores:
        log.info("workbench store refused tenant=%s member=%s store=%s", tenant.id,
                 member.userid, wanted)
        return _render("workbench_error.html", 403, key="store", tenant=tenant.id)
    store = None
    if member.stores:
        store_id = wanted or next(iter(member.stores))
        store = {"id": store_id, "name": member.stores[store_id],
                 "view": await workbench.store(tenant, store_id, span)}
    mine = todo = None
    if member.guide:
        mine = await workbench.my_figures(tenant, member.userid, span)
        todo = await workbench.todo(tenant, member.userid)
    return _render("workbench.html", tenant=tenant, member=member, span=span, mine=mine,
                   todo=todo, store=store)


async def customer(request: web.Request) -> web.StreamResponse:
    """A customer of the guide's (a follow-up's link): the card the sidebar shows, read by
    the sidebar's service, for the guide who follows the customer only."""
    tenant = _tenant(request)
    member, instead = await _member(request, tenant)
    if member is None:
        assert instead is not None
        return instead
    try:
        view = await request.app[SERVICES].sidebar.customer(
            tenant, member.userid, request.match_info["customer"])
    except NotFound:
        return _render("workbench_error.html", 404, key="customer", tenant=tenant.id)
    return _render("workbench_customer.html", tenant=tenant, view=view)


def routes() -> list[web.RouteDef]:
    return [web.get("/m/{tenant}", page), web.get("/m/{tenant}/customer/{customer}", customer)]
