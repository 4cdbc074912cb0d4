"""Console sign-in: a signed session cookie per tenant, CSRF tokens bound to it, and the
bearer header for tools. The signing key is derived from the tenant's admin token, so
rotating the token signs every session out."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from guidebot.settings import TenantSettings

COOKIE = "gb_console"
LOGIN_CSRF_COOKIE = "gb_login_csrf"
CSRF_FIELD = "_csrf"
SESSION_S = 12 * 3600
PATH = "/console/"


@dataclass(frozen=True)
class Access:
    tenant: TenantSettings
    csrf: str  # the token every form of this session carries ("" for bearer callers)
    bearer: bool


def _key(tenant: TenantSettings) -> bytes:
    return hmac.new(tenant.admin_token.encode(), b"guidebot console session v1",
                    hashlib.sha256).digest()


def _sign(tenant: TenantSettings, body: str) -> str:
    return hmac.new(_key(tenant), body.encode(), hashlib.sha256).hexdigest()


def csrf_of(tenant: TenantSettings, nonce: str) -> str:
    return _sign(tenant, f"csrf|{nonce}")[:40]


def issue(tenant: TenantSettings, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_S)
    body = f"{tenant.id}|{expires}|{secrets.token_urlsafe(16)}"
    return f"{body}|{_sign(tenant, body)}"


def cookie_tenant(value: str) -> str | None:
    """The tenant a cookie claims (unverified), to tell 'another tenant' from 'no session'."""
    parts = value.split("|")
    return parts[0] if len(parts) == 4 else None


def verify(tenant: TenantSettings, value: str, now: float | None = None) -> str | None:
    """The session's nonce when the cookie is this tenant's, well signed and unexpired."""
    parts = value.split("|")
    if len(parts) != 4 or parts[0] != tenant.id or not parts[1].isdigit():
        return None
    body = "|".join(parts[:3])
    if not hmac.compare_digest(_sign(tenant, body), parts[3]):
        return None
    if int(parts[1]) < (now or time.time()):
        return None
    return parts[2]


def token_matches(tenant: TenantSettings, token: str) -> bool:
    return bool(token) and hmac.compare_digest(token.encode(), tenant.admin_token.encode())


def set_session(response: web.StreamResponse, tenant: TenantSettings, secure: bool) -> None:
    response.set_cookie(COOKIE, issue(tenant), path=PATH, httponly=True, samesite="Lax",
                        secure=secure, max_age=SESSION_S)


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=PATH)


def access(request: web.Request, tenant: TenantSettings) -> Access:
    """Who may see /console/{tenant}/…, or the answer for whoever may not: no credentials or
    a bad cookie → to the sign-in page; another tenant's session or a wrong token → 403."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        if token_matches(tenant, token):
            return Access(tenant, "", bearer=True)
        raise web.HTTPForbidden(text="token not valid for this tenant")
    value = request.cookies.get(COOKIE, "")
    nonce = verify(tenant, value) if value else None
    if nonce is not None:
        return Access(tenant, csrf_of(tenant, nonce), bearer=False)
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
