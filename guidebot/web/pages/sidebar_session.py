"""The guide's sidebar session: a signed HttpOnly cookie per tenant, and its CSRF token.

The cookie holds the tenant and the guide's userid as WeCom's OAuth2 named them, for
SESSION_TTL_S; its key is derived from the tenant's admin token, so rotating that token ends
every session. Its path is the tenant's sidebar, and the tenant inside it is checked too.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from guidebot.settings import TenantSettings
from guidebot.web import signed

COOKIE = "gb_sidebar"
STATE_COOKIE = "gb_sidebar_state"
NEXT_COOKIE = "gb_sidebar_next"  # the handoff page to return to after OAuth
SESSION_TTL_S = 12 * 3600  # a working day; WeCom's OAuth runs again after it
STATE_TTL_S = 600
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class GuideSession:
    tenant: str
    guide: str
    value: str  # the cookie value (the CSRF token is bound to it)


def _key(tenant: TenantSettings) -> bytes:
    return signed.derive_key(tenant.admin_token, f"sidebar session {tenant.id}")


def path(tenant: TenantSettings) -> str:
    return f"/sidebar/{tenant.id}"


def secure(request: web.Request, public_url: str) -> bool:
    return public_url.startswith("https://") or request.secure


def start(response: web.StreamResponse, tenant: TenantSettings, guide: str, *,
          secure: bool) -> None:
    value = signed.seal(_key(tenant), {"t": tenant.id, "g": guide}, SESSION_TTL_S)
    response.set_cookie(COOKIE, value, max_age=SESSION_TTL_S, path=path(tenant),
                        httponly=True, samesite="Lax", secure=secure)


def current(request: web.Request, tenant: TenantSettings) -> GuideSession | None:
    value = request.cookies.get(COOKIE, "")
    fields = signed.unseal(_key(tenant), value) if value else None
    if fields is None or fields.get("t") != tenant.id or not isinstance(fields.get("g"), str):
        return None
    return GuideSession(tenant.id, fields["g"], value)


def csrf(tenant: TenantSettings, session: GuideSession) -> str:
    return signed.csrf_token(_key(tenant), session.value)


def csrf_ok(request: web.Request, tenant: TenantSettings, session: GuideSession) -> bool:
    return signed.csrf_ok(_key(tenant), session.value, request.headers.get(CSRF_HEADER, ""))
