"""The SaaS operator's usage page across tenants: /operator/usage?period=YYYY-MM.

Signed in with `[server] operator_token`: `Authorization: Bearer <token>` (tools), or the form
at /operator/login, which starts a signed HttpOnly cookie (browsers). Every form carries a
CSRF token. Without an operator token in the config, every /operator route answers 404.
Failed form sign-ins and wrong bearer tokens are throttled per client address, in one count
(guidebot/web/signin_throttle.py).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from guidebot.errors import ValidationFailed
from guidebot.settings import Settings
from guidebot.stats import definitions
from guidebot.usage import metering
from guidebot.web import signed
from guidebot.web.keys import SERVICES
from guidebot.web.signin_throttle import OPERATOR, Held, retry_later, throttle_of

COOKIE, LOGIN_CSRF = "gb_operator", "gb_operator_login"
SESSION_TTL_S = 8 * 3600
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"}

_PAGES = Environment(loader=PackageLoader("guidebot", "templates"),
                     autoescape=select_autoescape(["html"]))


def _settings(request: web.Request) -> Settings:
    settings = request.app[SERVICES].settings
    if not settings.server.operator_token:
        raise web.HTTPNotFound()
    return settings


def _key(settings: Settings) -> bytes:
    return signed.derive_key(settings.server.operator_token, "operator session")


def _html(template: str, status: int = 200, **values: object) -> web.Response:
    return web.Response(text=_PAGES.get_template(template).render(**values), status=status,
                        content_type="text/html", headers=HEADERS)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={**HEADERS, "Location": location})


def _session(request: web.Request, settings: Settings) -> str | None:
    """The cookie value of a valid operator session, if any."""
    value = request.cookies.get(COOKIE, "")
    return value if value and signed.unseal(_key(settings), value) is not None else None


def _bearer_ok(request: web.Request, settings: Settings) -> Held | bool | None:
    """None without a bearer header; Held while this address is throttled; else whether it
    is the operator token (a wrong one counted)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return throttle_of(request).bearer(request, OPERATOR, lambda: hmac.compare_digest(
        token.encode(), settings.server.operator_token.encode()))


def _secure(request: web.Request, settings: Settings) -> bool:
    return settings.server.public_url.startswith("https://") or request.secure


async def login_form(request: web.Request) -> web.Response:
    settings = _settings(request)
    nonce = secrets.token_urlsafe(24)
    response = _html("operator_login.html", csrf=nonce, failed=False)
    response.set_cookie(LOGIN_CSRF, nonce, max_age=600, path="/operator/", httponly=True,
                        samesite="Strict", secure=_secure(request, settings))
    return response


async def login(request: web.Request) -> web.Response:
    settings = _settings(request)
    form = await request.post()
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not expected or not hmac.compare_digest(expected, str(form.get("csrf", ""))):
        return _html("operator_login.html", 403, csrf="", failed=True)
    throttle = throttle_of(request)
    if (held := throttle.held(request, OPERATOR)) is not None:
        return retry_later(_html("operator_login.html", 429, csrf=expected, failed=False,
                                 wait=held.minutes), held)
    token = str(form.get("token", ""))
    if not hmac.compare_digest(token.encode(), settings.server.operator_token.encode()):
        throttle.refused(request, OPERATOR)
        return _html("operator_login.html", 403, csrf=expected, failed=True)
    throttle.signed_in(request, OPERATOR)
    response = _redirect("/operator/usage")
    response.set_cookie(COOKIE, signed.seal(_key(settings), {"op": 1}, SESSION_TTL_S),
                        max_age=SESSION_TTL_S, path="/operator/", httponly=True,
                        samesite="Strict", secure=_secure(request, settings))
    response.del_cookie(LOGIN_CSRF, path="/operator/")
    return response


async def logout(request: web.Request) -> web.Response:
    settings = _settings(request)
    session = _session(request, settings)
    form = await request.post()
    if session is None or not signed.csrf_ok(_key(settings), session,
                                             str(form.get("csrf", ""))):
        return _redirect("/operator/login")
    response = _redirect("/operator/login")
    response.del_cookie(COOKIE, path="/operator/")
    return response


async def usage(request: web.Request) -> web.Response:
    settings = _settings(request)
    bearer, session = _bearer_ok(request, settings), _session(request, settings)
    if isinstance(bearer, Held):
        return retry_later(web.json_response(
            {"error": f"too many wrong tokens from this address: try again in "
                      f"{bearer.minutes} min"}, status=429), bearer)
    if bearer is False:
        return web.json_response({"error": "token not valid"}, status=403)
    if bearer is None and session is None:
        return _redirect("/operator/login")
    period = request.query.get("period") or datetime.now(UTC).strftime("%Y-%m")
    try:
        report = await metering.usage_report(request.app[SERVICES].db,
                                             settings.tenants.values(), period)
    except ValidationFailed as exc:
        return web.json_response({"error": str(exc)}, status=400)
    if request.query.get("format") == "csv":
        return web.Response(text=metering.to_csv(report), content_type="text/csv",
                            charset="utf-8", headers={
                                **HEADERS, "Content-Disposition":
                                f'attachment; filename="guidebot-usage-{period}.csv"'})
    if request.query.get("format") == "json":
        return web.json_response({"period": period, "tenants": report}, headers=HEADERS)
    csrf = signed.csrf_token(_key(settings), session) if session else ""
    return _html("operator_usage.html", period=period, rows=report, csrf=csrf,
                 yuan=definitions.yuan, kinds=list(metering.MESSAGE_KINDS))


def routes() -> list[web.RouteDef]:
    return [web.get("/operator/login", login_form), web.post("/operator/login", login),
            web.post("/operator/logout", logout), web.get("/operator/usage", usage)]
