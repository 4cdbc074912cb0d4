"""GET /sidebar/{tenant}: the chat-toolbar page (聊天工具栏) a guide opens in WeCom.

Without a session the page sends the guide through WeCom's OAuth2 (FACTS-next §B.7:
snsapi_base, the tenant's corp id and agent id, `state` checked against a short cookie);
WeCom comes back with `?code=`, which auth/getuserinfo turns into the guide's userid, kept in
a signed session cookie (sidebar_session.py). The page then registers with ww.register
(agentConfig signature from /sidebar/{tenant}/signature), reads the open chat's customer
with getCurExternalContact and shows /sidebar/{tenant}/customer/{id} (sidebar_api.py).

GET /sidebar/{tenant}/handoff/{msgid}: the page a 微信客服 handoff's app message opens, for
the guide who took the session only (the same session; OAuth first without one, and back here
after it): the customer and their latest messages, and where to answer them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from guidebot.settings import Settings, TenantSettings
from guidebot.stats import definitions
from guidebot.web.keys import SERVICES
from guidebot.web.pages import sidebar_api
from guidebot.web.pages import sidebar_session as sessions
from guidebot.web.pages.console import LANGS, session_change
from guidebot.web.pages.console import catalog as console_words

log = logging.getLogger(__name__)

# every refusal the sidebar's own requests may meet (sidebar_api.py, sidebar_materials.py and
# the services they call): tests/scenario/test_sidebar_refusals.py checks each is worded
SIDEBAR_REFUSALS = ("refusal.sidebar.", "refusal.note.", "refusal.remark.", "refusal.profile.",
                    "refusal.description.", "refusal.tags_unknown", "refusal.tags_edit_empty",
                    "refusal.material.unknown", "refusal.material.not_approved",
                    "refusal.material.channel", "refusal.material.video",
                    "refusal.material.pictures", "refusal.material.contribution_empty")

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_PREFIX = "/sidebar/_static"  # "_static" can never be a tenant id
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                      "frame-ancestors 'none'"}

_PAGES = Environment(loader=PackageLoader("guidebot", "templates"),
                     autoescape=select_autoescape(["html"]))


def _tenant(request: web.Request) -> TenantSettings:
    tenant = request.app[SERVICES].settings.tenants.get(request.match_info["tenant"])
    if tenant is None:
        raise web.HTTPNotFound()
    return tenant


def oauth_url(settings: Settings, tenant: TenantSettings, state: str, base: str = "") -> str:
    """WeCom's authorize URL coming back to `base` (default: the tenant's sidebar)."""
    return sessions.oauth_url(tenant, state,
                              f"{settings.server.public_url}{base or sessions.path(tenant)}")


def message(status: int, key: str) -> web.Response:
    html = _PAGES.get_template("sidebar_error.html").render(key=key)
    return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={**HEADERS, "Location": location})


async def page(request: web.Request) -> web.StreamResponse:
    tenant = _tenant(request)
    if "code" in request.query:
        return await sign_in(request, tenant, _back_to(request, tenant))
    session = sessions.current(request, tenant)
    if session is None:
        return to_oauth(request, tenant)
    html = _PAGES.get_template("sidebar.html").render(
        tenant=tenant, guide=session.guide, csrf=sessions.csrf(tenant, session),
        static=STATIC_PREFIX, refusals=_refusals())
    return web.Response(text=html, content_type="text/html", headers=HEADERS)


async def handoff(request: web.Request) -> web.StreamResponse:
    tenant = _tenant(request)
    session = sessions.current(request, tenant)
    if session is None:
        return to_oauth(request, tenant, back=request.rel_url.raw_path)
    view = await request.app[SERVICES].kf.handoff.view(tenant.id, session.guide,
                                                       request.match_info["msgid"])
    if view is None:  # no such handoff, or another guide's: the same answer
        return message(404, "handoff")
    words = console_words(LANGS[0])  # the page is Chinese: the console's zh-CN words
    html = _PAGES.get_template("kf_handoff.html").render(
        view=view, zone=tenant.tz, static=STATIC_PREFIX, yuan=definitions.yuan, words=words,
        session_event=lambda m: session_change(words, view["names"], m))
    return web.Response(text=html, content_type="text/html", headers=HEADERS)


def _refusals() -> dict[str, str]:
    """The wording of the refusals the sidebar's own requests may meet, from the console's
    zh-CN catalog: one wording for both."""
    return {k: v for k, v in console_words(LANGS[0]).items()
            if k.startswith(SIDEBAR_REFUSALS)}


def _back_to(request: web.Request, tenant: TenantSettings) -> str:
    """Where the sign-in returns: a handoff page of this tenant, else the sidebar."""
    back = request.cookies.get(sessions.NEXT_COOKIE, "")
    return back if back.startswith(f"{sessions.path(tenant)}/handoff/") else sessions.path(tenant)


def to_oauth(request: web.Request, tenant: TenantSettings, *, back: str = "",
             base: str = "") -> web.StreamResponse:
    """To WeCom's OAuth, coming back to `base` (default: the sidebar; the state and the
    page to return to kept in short cookies under it)."""
    settings = request.app[SERVICES].settings
    base = base or sessions.path(tenant)
    state = sessions.new_state()
    response = _redirect(oauth_url(settings, tenant, state, base))
    def short_cookie(name: str, value: str) -> None:
        response.set_cookie(name, value, max_age=sessions.STATE_TTL_S,
                            path=base, httponly=True, samesite="Lax",
                            secure=sessions.secure(request, settings.server.public_url))

    short_cookie(sessions.STATE_COOKIE, state)
    if back:
        short_cookie(sessions.NEXT_COOKIE, back)
    else:
        response.del_cookie(sessions.NEXT_COOKIE, path=base)
    return response


async def sign_in(request: web.Request, tenant: TenantSettings, back: str, *,
                  base: str = "",
                  refuse: Callable[[int, str], web.Response] = message) -> web.StreamResponse:
    """WeCom came back with a code: the member's session for the pages under `base`
    (default: the sidebar), then a redirect to `back`; a refusal is the page `refuse`
    words for its reason (oauth_member's)."""
    services = request.app[SERVICES]
    base = base or sessions.path(tenant)
    guide, refused = await sessions.oauth_member(request, services.client(tenant.id),
                                                 sessions.STATE_COOKIE)
    if refused:
        log.info("sign-in refused tenant=%s at=%s why=%s", tenant.id, base, refused)
        return refuse(sessions.refusal_status(refused), refused)
    # a redirect: a reload must not reuse the spent code
    response = _redirect(back)
    sessions.start(response, tenant, guide, at=base,
                   secure=sessions.secure(request, services.settings.server.public_url))
    response.del_cookie(sessions.STATE_COOKIE, path=base)
    response.del_cookie(sessions.NEXT_COOKIE, path=base)
    log.info("session started tenant=%s at=%s guide=%s", tenant.id, base, guide)
    return response


def routes() -> list[web.RouteDef | web.StaticDef]:
    return [web.static(STATIC_PREFIX, STATIC_DIR), web.get("/sidebar/{tenant}", page),
            web.get("/sidebar/{tenant}/handoff/{msgid}", handoff), *sidebar_api.routes()]
