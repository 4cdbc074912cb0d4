"""The guide's sidebar session: a signed HttpOnly cookie per tenant, and its CSRF token.

The cookie holds the tenant and the guide's userid as WeCom's OAuth2 named them, for
SESSION_TTL_S; its key is derived from the tenant's admin token, so rotating that token ends
every session. Its path is the tenant's sidebar (or the tenant's mobile workbench, which signs
in the same way: web/pages/workbench.py), and the tenant inside it is checked too.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from aiohttp import web

from guidebot.errors import WeComError, WeComTransportError
from guidebot.settings import TenantSettings
from guidebot.web import signed

log = logging.getLogger(__name__)

COOKIE = "gb_sidebar"
STATE_COOKIE = "gb_sidebar_state"
NEXT_COOKIE = "gb_sidebar_next"  # the handoff page to return to after OAuth
SESSION_TTL_S = 12 * 3600  # a working day; WeCom's OAuth runs again after it
STATE_TTL_S = 600
CSRF_HEADER = "X-CSRF-Token"
OAUTH_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
UNREACHABLE = "unreachable"  # oauth_member's reason when WeCom could not be asked


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
          secure: bool, at: str = "") -> None:
    """The session cookie, for the pages under `at` (default: the tenant's sidebar)."""
    value = signed.seal(_key(tenant), {"t": tenant.id, "g": guide}, SESSION_TTL_S)
    response.set_cookie(COOKIE, value, max_age=SESSION_TTL_S, path=at or path(tenant),
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


# WeCom's OAuth2 (FACTS-next §B.7), shared by the sidebar and the console's WeCom sign-in


class OAuthClient(Protocol):
    async def oauth_user_info(self, code: str) -> dict[str, Any]: ...


def oauth_url(tenant: TenantSettings, state: str, redirect: str) -> str:
    """The authorize URL (snsapi_base, with the agent id) coming back to `redirect` (an
    absolute URL); the fragment is part of WeCom's documented URL."""
    query = urlencode({"appid": tenant.corp_id, "redirect_uri": redirect,
                       "response_type": "code", "scope": "snsapi_base", "state": state,
                       "agentid": tenant.agent_id}, quote_via=quote)
    return f"{OAUTH_AUTHORIZE}?{query}#wechat_redirect"


def new_state() -> str:
    return secrets.token_hex(16)  # [a-zA-Z0-9], ≤ 128 bytes


async def oauth_member(request: web.Request, client: OAuthClient,
                       state_cookie: str) -> tuple[str, str]:
    """The member WeCom's redirect names: (userid, "") — or ("", why) with why "state" (not
    the state this browser was given), "unreachable" (no answer from WeCom: down, timed out
    or a gateway error; the code was not judged), "code" (WeCom refused the code: spent,
    expired or forged) or "member" (a visitor who is not a member of the corp)."""
    expected = request.cookies.get(state_cookie, "")
    if not expected or not hmac.compare_digest(expected, request.query.get("state", "")):
        return "", "state"
    try:
        info = await client.oauth_user_info(request.query.get("code", ""))
    except WeComTransportError as exc:
        log.warning("oauth code not checked: WeCom unreachable (%s)", exc.errmsg)
        return "", UNREACHABLE
    except WeComError as exc:
        log.info("oauth code refused errcode=%s", exc.errcode)
        return "", "code"
    userid = info.get("userid")
    if not isinstance(userid, str) or not userid:
        return "", "member"
    return userid, ""


def refusal_status(why: str) -> int:
    """The status a sign-in refused for `why` (oauth_member's) is answered with: 503 when
    WeCom could not be asked (try again later), else 403."""
    return 503 if why == UNREACHABLE else 403
