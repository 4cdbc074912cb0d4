"""Console sign-in: a signed session cookie per tenant naming who signed in (a member's
WeCom userid, or "admin token" for the token sign-in) and their role, CSRF tokens bound to
it, and the bearer header for tools. The signing key is derived from the tenant's admin token,
so rotating the token signs every session out; a member taken off `[tenants.<id>.console]`
is signed out at their next request."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from guidebot.audit.log import TOKEN_ACTOR
from guidebot.settings import TenantSettings
from guidebot.web import signed
from guidebot.web.signin_throttle import Held, throttle_of

COOKIE = "gb_console"
LOGIN_CSRF_COOKIE = "gb_login_csrf"
CSRF_FIELD = "_csrf"
SESSION_S = 12 * 3600
PATH = "/console/"
STATE_COOKIE = "gb_console_state"  # the WeCom sign-in's OAuth state
MEMBER = "member"
VIEWER = "viewer"


@dataclass(frozen=True)
class Access:
    tenant: TenantSettings
    csrf: str  # the token every form of this session carries ("" for bearer callers)
    bearer: bool
    actor: str = TOKEN_ACTOR  # a member's userid (WeCom sign-in), or "admin token"
    role: str = MEMBER  # member: full access; viewer: pages only, every POST refused
    name: str = ""  # the actor's name in the directory when signing in, if known

    @property
    def viewer(self) -> bool:
        return self.role == VIEWER


@dataclass(frozen=True)
class Session:
    actor: str
    role: str
    name: str
    value: str  # the cookie value (the CSRF token is bound to it)


def _key(tenant: TenantSettings) -> bytes:
    return signed.derive_key(tenant.admin_token, f"console session v2 {tenant.id}")


def _clock(now: float | None) -> Callable[[], float]:
    return time.time if now is None else (lambda: now)


def issue(tenant: TenantSettings, actor: str = TOKEN_ACTOR, role: str = MEMBER, *,
          name: str = "", now: float | None = None) -> str:
    return signed.seal(_key(tenant), {"t": tenant.id, "a": actor, "r": role, "d": name[:64],
                                      "n": secrets.token_urlsafe(8)}, SESSION_S,
                       clock=_clock(now))


def cookie_tenant(value: str) -> str | None:
    """The tenant a cookie claims (unverified), to tell 'another tenant' from 'no session'."""
    claimed = signed.peek(value)
    tenant = claimed.get("t") if claimed else None
    return tenant if isinstance(tenant, str) else None


def current_role(tenant: TenantSettings, actor: str) -> str | None:
    """The actor's role by today's config: a member taken off the lists is signed out."""
    return MEMBER if actor == TOKEN_ACTOR else tenant.console.role(actor)


def verify(tenant: TenantSettings, value: str, now: float | None = None) -> Session | None:
    """The session when the cookie is this tenant's, well signed, unexpired and its actor
    still listed (the role as the config says now)."""
    fields = signed.unseal(_key(tenant), value, clock=_clock(now))
    if fields is None or fields.get("t") != tenant.id or not isinstance(fields.get("a"), str):
        return None
    role = current_role(tenant, fields["a"])
    name = str(fields.get("d") or "")
    return Session(fields["a"], role, name, value) if role is not None else None


def csrf_of(tenant: TenantSettings, session: Session) -> str:
    return signed.csrf_token(_key(tenant), session.value)


def token_matches(tenant: TenantSettings, token: str) -> bool:
    return bool(token) and hmac.compare_digest(token.encode(), tenant.admin_token.encode())


def set_session(response: web.StreamResponse, tenant: TenantSettings, secure: bool, *,
                actor: str = TOKEN_ACTOR, role: str = MEMBER, name: str = "") -> None:
    response.set_cookie(COOKIE, issue(tenant, actor, role, name=name), path=PATH, httponly=True,
                        samesite="Lax", secure=secure, max_age=SESSION_S)


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=PATH)


def actor_of(request: web.Request, tenant: TenantSettings) -> str:
    """Who made a request that was answered (for 操作日志): the bearer is the admin token,
    else the session's actor."""
    scheme, _, _ = request.headers.get("Authorization", "").partition(" ")
    value = request.cookies.get(COOKIE, "")
    session = verify(tenant, value) if value and scheme.lower() != "bearer" else None
    return session.actor if session is not None else TOKEN_ACTOR


def access(request: web.Request, tenant: TenantSettings) -> Access:
    """Who may see /console/{tenant}/…, or the answer for whoever may not: no credentials or
    a bad cookie → to the sign-in page; another tenant's session or a wrong token → 403; an
    address with too many wrong tokens or failed sign-ins → 429, whatever its token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        verdict = throttle_of(request).bearer(request, tenant.id,
                                              lambda: token_matches(tenant, token))
        if isinstance(verdict, Held):
            raise web.HTTPTooManyRequests(
                text=f"too many wrong tokens from this address: try again in "
                     f"{verdict.minutes} min", headers={"Retry-After": str(verdict.retry_after)})
        if verdict:
            return Access(tenant, "", bearer=True)
        raise web.HTTPForbidden(text="token not valid for this tenant")
    value = request.cookies.get(COOKIE, "")
    session = verify(tenant, value) if value else None
    if session is not None:
        return Access(tenant, csrf_of(tenant, session), bearer=False, actor=session.actor,
                      role=session.role, name=session.name)
    claimed = cookie_tenant(value) if value else None
    if claimed is not None and claimed != tenant.id:
        raise web.HTTPForbidden(text="signed in to another tenant")
    raise web.HTTPSeeOther(f"{PATH}login?next={request.path}")


async def check_csrf(request: web.Request, who: Access) -> None:
    """Every POST from a session carries its CSRF token (bearer callers send no cookie)."""
    if who.bearer:
        return
    form = await request.post()
    sent = str(form.get(CSRF_FIELD, ""))
    if not sent or not hmac.compare_digest(sent, who.csrf):
        raise web.HTTPForbidden(text="missing or wrong CSRF token")


def login_csrf(request: web.Request) -> str:
    """The sign-in form's token: a random value in a cookie, repeated in the form."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def login_csrf_ok(request: web.Request, sent: str) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(sent, expected)
