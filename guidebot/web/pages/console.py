"""The HQ console: sign-in, sign-out and the page frame (language, navigation, CSRF); the
pages themselves are in console_pages.py. zh-CN by default, English by ?lang=en (kept in a
cookie); the wording is in guidebot/templates/console/i18n/."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import MatchInfoError
from jinja2 import Environment, PackageLoader, select_autoescape

from guidebot.audit.log import (
    SIGN_IN,
    SIGN_IN_REFUSED,
    SIGN_IN_THROTTLED,
    SIGN_OUT,
    TOKEN_ACTOR,
)
from guidebot.chat.reply_times import session_words
from guidebot.content.sop_planner import parse_offset
from guidebot.errors import NotFound, Refusal, StateConflict, ValidationFailed
from guidebot.services import Services
from guidebot.settings import TenantSettings
from guidebot.stats import definitions
from guidebot.stats.overview import parse_range, range_presets
from guidebot.web.audit_trail import record_access
from guidebot.web.keys import SERVICES
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages import sidebar_session as sessions
from guidebot.web.signin_throttle import Held, retry_later, throttle_of

LANGS = ("zh-CN", "en")
LANG_COOKIE = "gb_lang"
STATIC = Path(__file__).resolve().parents[1] / "static"
NAV = (("overview", ""), ("guides", "guides"), ("stores", "stores"), ("targets", "targets"),
       ("customers", "customers"), ("segments", "segments"), ("tags", "tags"),
       ("channels", "channels"),
       ("groups", "groups"), ("group_codes", "group-codes"), ("transfers", "transfers"),
       ("deletions", "deletions"),
       ("handoffs", "handoffs"),
       ("watch", "watch"), ("orders", "orders"), ("commissions", "commissions"),
       ("sops", "sops"), ("content", "content"), ("outbox", "outbox"),
       ("materials", "materials"), ("audit", "audit"))
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"}

_ENV = Environment(loader=PackageLoader("guidebot", "templates"),
                   autoescape=select_autoescape(["html"]))
_ENV.globals.update(yuan=definitions.yuan, percent=definitions.percent,
                    figures=definitions.FIGURES)

Page = Callable[[web.Request, auth.Access], Awaitable[web.StreamResponse]]


@cache
def catalog(lang: str) -> dict[str, str]:
    text = resources.files("guidebot").joinpath(f"templates/console/i18n/{lang}.json")
    return dict(json.loads(text.read_text(encoding="utf-8")))


def language(request: web.Request) -> str:
    wanted = request.query.get("lang") or request.cookies.get(LANG_COOKIE, "")
    return wanted if wanted in LANGS else LANGS[0]


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def render(request: web.Request, template: str, *, who: auth.Access | None = None,
           active: str = "", status: int = 200, **context: Any) -> web.Response:
    lang = language(request)
    words = catalog(lang)
    other = LANGS[1] if lang == LANGS[0] else LANGS[0]
    query = {k: v for k, v in request.query.items() if k != "lang"}
    query["lang"] = other
    zone = who.tenant.tz if who else UTC
    if who is not None and "range" in context:
        context["presets"] = _presets(request, who, context["range"],
                                      context.get("range_filters"))
    html = _ENV.get_template(f"console/{template}").render(
        t=lambda key: words.get(key, key), lang=lang, other_lang=other,
        word=lambda group, code: words.get(f"{group}.{code}", code),
        local=lambda value, seconds=False: local_time(value, zone, seconds=seconds),
        offset=lambda text: step_offset(words, text),
        session_event=lambda message, names: session_change(words, names, message),
        lang_query=urlencode(query), who=who, active=active,
        nav=NAV, tenant_id=who.tenant.id if who else "", **context)
    response = web.Response(text=html, content_type="text/html", status=status,
                            headers=HEADERS)
    if request.query.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, path=auth.PATH, samesite="Lax",
                            max_age=365 * 86400)
    return response


# Every console CSV, by the route (GET path template) whose `?format=csv` answers it, and whether
# it lists individual customers' personal data (True) or only figures and HQ's own acts (False).
# `csv_export` reads this list (a route missing from it is taken as personal, the safe side),
# and tests/scenario/test_console_csv_policy.py fails until every CSV route is in it. A new CSV is
# personal as soon as it has a column naming a customer (external_userid, name, remark, tags,
# profile fields, messages, one order's customer); figures per guide or store are not.
CSV_EXPORTS: dict[str, bool] = {
    # every customer the search finds: external_userid, name, guides, tags, 客户资料
    "/console/{tenant}/customers": True,
    # a segment's members, in the customers CSV's columns
    "/console/{tenant}/segments/{segment_id}": True,
    # each order with its customer's external_userid and name
    "/console/{tenant}/orders": True,
    # 员工删人记录: each deleted customer's external_userid and name
    "/console/{tenant}/deletions": True,
    # 导购排行: figures per guide (guides are staff, not customers)
    "/console/{tenant}/guides": False,
    # figures per store
    "/console/{tenant}/stores": False,
    # a period's statement: earned, clawback, adjustment and orders counted per guide
    "/console/{tenant}/commissions": False,
    # 操作日志: HQ's own actions (who, route, path ids, status), never a body. An exception
    # to the rule above, by choice: a path id may be the customer an action was about (an
    # external_userid, never a name or a message), as every viewer sees on the page itself;
    # the log of who did what stays readable to the read-only members who audit it
    "/console/{tenant}/audit": False,
}


async def csv_export(request: web.Request, who: auth.Access, filename: str,
                     chunks: AsyncIterator[str]) -> web.StreamResponse:
    """The one way a console page sends a CSV, streamed as it is read (UTF-8 with a BOM, so a
    spreadsheet opens Chinese names as they are), by its route's class in CSV_EXPORTS:

    - personal (customers, segment members, orders, 员工删人记录): members only — a read-only
      viewer sees the page, not the file (403, worded `err.viewer_export`) — and each download
      is recorded in 操作日志 (its action the route's GET and template) once it is sure to
      start;
    - aggregate (guides, stores, commissions, 操作日志): for whoever sees the page, not
      recorded.

    The first chunk is read before anything is recorded or the answer starts, so a refused
    request is still a refusal page. A route not in CSV_EXPORTS is taken as personal."""
    resource = request.match_info.route.resource
    personal = CSV_EXPORTS.get(resource.canonical if resource is not None else "", True)
    if personal and who.viewer:
        return viewer_refused(request, who, "err.viewer_export")
    first = await anext(chunks)  # a refusal comes here, before anything is recorded
    if personal:
        await record_access(request)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"'})
    await response.prepare(request)
    await response.write(("\ufeff" + first).encode())
    async for chunk in chunks:
        await response.write(chunk.encode())
    await response.write_eof()
    return response


async def one_chunk(text: str) -> AsyncIterator[str]:
    """A CSV made whole in memory, as the chunks `csv_export` streams."""
    yield text


class DayRange(NamedTuple):
    """A page's range of the tenant's days, both ends included."""

    day_from: date
    day_to: date

    @property
    def shown(self) -> dict[str, str]:
        """The range as the page shows it and its links carry it: {"from": …, "to": …}."""
        return {"from": self.day_from.isoformat(), "to": self.day_to.isoformat()}

    def export(self, **kept: str) -> str:
        """The query of the page's CSV link: the filters `kept`, the range, format=csv."""
        return urlencode({**kept, **self.shown, "format": "csv"})


def day_range(request: web.Request, who: auth.Access, *,
              clock: Callable[[], datetime] | None = None) -> DayRange:
    """The page's ?from=&to= (parse_range: by default the 30 days up to the tenant's today,
    by the service's `clock` where the page has one); a bad range is refused
    (ValidationFailed, code range.dates | range.order | range.too_long), worded by `page`
    before any CSV is begun."""
    day = today(who.tenant) if clock is None else clock().astimezone(who.tenant.tz).date()
    return DayRange(*parse_range(request.query.get("from"), request.query.get("to"), day))


def wants_csv(request: web.Request) -> bool:
    """The page is asked for its CSV (?format=csv, the link `DayRange.export` makes)."""
    return request.query.get("format") == "csv"


async def range_csv(request: web.Request, who: auth.Access, kind: str, days: DayRange,
                    chunks: AsyncIterator[str]) -> web.StreamResponse:
    """A range page's CSV download (`csv_export`), named `{kind}-{tenant}-{from}-{to}.csv`."""
    return await csv_export(
        request, who, f"{kind}-{who.tenant.id}-{days.day_from}-{days.day_to}.csv", chunks)


def _presets(request: web.Request, who: auth.Access, shown: dict[str, str],
             filters: dict[str, str] | None) -> list[dict[str, Any]]:
    """The range presets' links, the one matching the shown range marked current. Each keeps
    the page's filters: those it gives `render` as `range_filters` (操作日志's actor), else
    the store a page is filtered by."""
    store = {"store": request.query["store"]} if request.query.get("store") else {}
    kept = store if filters is None else filters
    return [{"name": name, "query": urlencode({**kept, "from": start.isoformat(),
                                              "to": end.isoformat()}),
             "current": (start.isoformat(), end.isoformat()) == (shown["from"], shown["to"])}
            for name, start, end in range_presets(today(who.tenant))]


def local_time(value: datetime | str | None, zone: tzinfo, *, seconds: bool = False) -> str:
    """A stored instant (UTC, or an ISO string from an API shape) as the tenant's wall-clock
    time, "2026-12-06 08:00"; "—" when there is none. Pages show every time this way."""
    if value is None or value == "":
        return "—"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:  # stored naive: UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def session_change(words: dict[str, str], names: dict[str, str], message: Any) -> str:
    """A 微信客服 session event in words (who took the session, to whom it went, its end),
    the servicer by their name in the guides' directory, else their userid; "" for any
    other message."""
    found = session_words(message)
    if found is None:
        return ""
    key, params = found
    if "servicer" in params:
        params["servicer"] = names.get(params["servicer"]) or params["servicer"]
    return words[key].format(**params)


def step_offset(words: dict[str, str], text: str) -> str:
    """An SOP step's `at` in words ("+2d" → 触发后 2 天, "day 3 at 10:00" → 第 3 天 10:00);
    as written when it does not parse (the SOP page lists library errors beside it)."""
    try:
        offset = parse_offset(text)
    except ValueError:
        return text
    if offset.delta is not None:
        minutes = int(offset.delta.total_seconds()) // 60
        if minutes == 0:
            return words["at.now"]
        n, unit = next((minutes // size, unit) for size, unit in
                       ((1440, "d"), (60, "h"), (1, "m")) if minutes % size == 0)
        return words[f"at.{unit}"].format(n=n)
    assert offset.at is not None  # "day N at HH:MM"
    key = "at.day0" if offset.day == 0 else "at.day"
    return words[key].format(day=offset.day, time=offset.at.strftime("%H:%M"))


def notice(request: web.Request, key: str) -> str:
    return catalog(language(request)).get(key, key)


def worded(request: web.Request, exc: Refusal) -> str | None:
    """A refusal in the page's language, a whole sentence (its wording `refusal.<code>` with
    its params); None where it has no code."""
    wording = catalog(language(request)).get(f"refusal.{exc.code}") if exc.code else None
    return wording.format(**exc.params) if wording is not None else None


def refusal(request: web.Request, exc: Refusal) -> str:
    """The refusal worded in the page's language, else its English detail."""
    return worded(request, exc) or str(exc)


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page under /console/{tenant}/: the caller's access checked first, POSTs' CSRF too."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        tenant = services_of(request).settings.tenants.get(request.match_info["tenant"])
        if tenant is None:
            raise web.HTTPNotFound()
        who = auth.access(request, tenant)
        if request.method == "POST":
            await auth.check_csrf(request, who)
            if who.viewer:  # 只读: a viewer sees every page and changes nothing
                return viewer_refused(request, who, "err.viewer")
        try:
            return await handler(request, who)
        except (ValidationFailed, NotFound) as exc:
            said = worded(request, exc)
            status = (404 if isinstance(exc, NotFound) else
                      409 if isinstance(exc, StateConflict) else 400)
            return render(request, "error.html", who=who, status=status,
                          message=said or str(exc), worded=said is not None,
                          back=_back(request, tenant.id), code=status)

    return wrapped


def viewer_refused(request: web.Request, who: auth.Access, key: str) -> web.Response:
    """A read-only viewer's refusal page (403), worded by the catalog's `key`."""
    return render(request, "error.html", who=who, status=403, message=notice(request, key),
                  worded=True, back=_back(request, who.tenant.id), code=403)


def _back(request: web.Request, tenant: str) -> str:
    """The console page the request came from (the form that was refused), or ""; only a
    page of this tenant's console on this host."""
    referer = urlsplit(request.headers.get("Referer", ""))
    path = referer.path + (f"?{referer.query}" if referer.query else "")
    same_host = referer.netloc == request.host
    return path if same_host and path.startswith(f"{auth.PATH}{tenant}/") else ""


def today(tenant: TenantSettings) -> Any:
    return datetime.now(tenant.tz).date()


def _safe_next(raw: str, tenant: str) -> str:
    home = f"{auth.PATH}{tenant}/"
    return raw if raw.startswith(home) and "//" not in raw[1:] else home


async def login_form(request: web.Request) -> web.Response:
    csrf = auth.login_csrf(request)
    response = render(request, "login.html", csrf=csrf, failed=False,
                      tenant=request.query.get("tenant", ""),
                      next=request.query.get("next", ""))
    response.set_cookie(auth.LOGIN_CSRF_COOKIE, csrf, path=auth.PATH, httponly=True,
                        samesite="Strict", secure=request.secure)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not auth.login_csrf_ok(request, str(form.get(auth.CSRF_FIELD, ""))):
        raise web.HTTPForbidden(text="missing or wrong CSRF token")
    tenant_id = str(form.get("tenant", "")).strip()
    tenant = services_of(request).settings.tenants.get(tenant_id)
    again: dict[str, Any] = {"csrf": request.cookies[auth.LOGIN_CSRF_COOKIE],
                             "tenant": tenant_id, "next": str(form.get("next", ""))}
    throttle = throttle_of(request)
    if tenant is not None and (held := throttle.held(request, tenant.id)) is not None:
        await _throttled(request, tenant, TOKEN_ACTOR, "token", held)
        return retry_later(render(request, "login.html", status=429, failed=False,
                                  wait=_wait(request, held), **again), held)
    if tenant is None or not auth.token_matches(tenant, str(form.get("token", ""))):
        if tenant is not None and throttle.refused(request, tenant.id):
            await _record(request, tenant, TOKEN_ACTOR, SIGN_IN_REFUSED, 401,
                          {"method": "token"})
        return render(request, "login.html", status=401, failed=True, **again)
    throttle.signed_in(request, tenant.id)
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", "")), tenant.id))
    auth.set_session(response, tenant, secure=request.secure)
    await _record(request, tenant, TOKEN_ACTOR, SIGN_IN, 303, {"method": "token"})
    raise response


async def _record(request: web.Request, tenant: TenantSettings, actor: str, action: str,
                  status: int, params: dict[str, str]) -> None:
    await services_of(request).audit.record(tenant.id, actor, action, params, status)


async def _throttled(request: web.Request, tenant: TenantSettings, actor: str, method: str,
                     held: Held) -> None:
    """A sign-in answered 429: one 操作日志 row when the throttling starts, none after."""
    if held.first:
        await _record(request, tenant, actor, SIGN_IN_THROTTLED, 429, {"method": method})


def _wait(request: web.Request, held: Held) -> str:
    return notice(request, "login.throttled").format(minutes=held.minutes)


async def login_wecom(request: web.Request) -> web.StreamResponse:
    """企业微信登录: WeCom's OAuth2 (snsapi_base) names the member who opened the console in
    the WeCom client; a member or viewer of `[tenants.<id>.console]` is signed in with their
    role, anyone else is refused and nothing is signed in."""
    services = services_of(request)
    tenant = services.settings.tenants.get(request.query.get("tenant", ""))
    if tenant is None:
        raise web.HTTPNotFound(text="unknown tenant")
    throttle = throttle_of(request)
    if (held := throttle.held(request, tenant.id)) is not None:
        await _throttled(request, tenant, "", "wecom", held)
        return retry_later(render(request, "error.html", status=429, worded=True, code=429,
                                  message=_wait(request, held), back="/console/login"), held)
    secure = sessions.secure(request, services.settings.server.public_url)
    if "code" not in request.query:
        state = sessions.new_state()
        back = (f"{services.settings.server.public_url}{auth.PATH}login/wecom?"
                + urlencode({"tenant": tenant.id}))
        to_wecom = web.HTTPFound(sessions.oauth_url(tenant, state, back), headers=HEADERS)
        to_wecom.set_cookie(auth.STATE_COOKIE, state, max_age=sessions.STATE_TTL_S,
                            path=auth.PATH, httponly=True, samesite="Lax", secure=secure)
        raise to_wecom
    userid, refused = await sessions.oauth_member(request, services.client(tenant.id),
                                                  auth.STATE_COOKIE)
    role = tenant.console.role(userid) if userid else None
    if role is None:
        why = refused or "not_listed"
        status = sessions.refusal_status(why)
        # a state this browser was not given is no sign-in attempt: any page can make a
        # browser send one (a cross-site GET carries no SameSite=Lax cookie), and WeCom
        # unreachable judged no code; neither is counted (the first would lock the visitor's
        # address out, the second a whole office retrying through an outage) nor recorded
        if (why not in ("state", sessions.UNREACHABLE)
                and throttle.refused(request, tenant.id)):
            await _record(request, tenant, userid, SIGN_IN_REFUSED, status,
                          {"method": "wecom", "why": why})
        refusal_page = render(request, "error.html", status=status, worded=True, code=status,
                              message=notice(request, f"login.wecom_{why}"),
                              back="/console/login")
        refusal_page.del_cookie(auth.STATE_COOKIE, path=auth.PATH)
        return refusal_page
    throttle.signed_in(request, tenant.id)
    name = (await services.stats.records.guide_names(tenant.id)).get(userid, "")
    # a redirect: a reload must not reuse the spent code
    response = web.HTTPSeeOther(f"{auth.PATH}{tenant.id}/")
    auth.set_session(response, tenant, secure, actor=userid, role=role, name=name)
    response.del_cookie(auth.STATE_COOKIE, path=auth.PATH)
    await _record(request, tenant, userid, SIGN_IN, 303, {"method": "wecom", "role": role})
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    tenant = services_of(request).settings.tenants.get(str(form.get("tenant", "")))
    if tenant is None:
        raise web.HTTPForbidden(text="unknown tenant")
    who = auth.access(request, tenant)
    await auth.check_csrf(request, who)
    response = web.HTTPSeeOther(f"{auth.PATH}login")
    auth.clear_session(response)
    await _record(request, tenant, who.actor, SIGN_OUT, 303, {})
    raise response


async def index(request: web.Request) -> web.StreamResponse:
    claimed = auth.cookie_tenant(request.cookies.get(auth.COOKIE, ""))
    tenants = services_of(request).settings.tenants
    if claimed is not None and claimed in tenants and auth.verify(
            tenants[claimed], request.cookies[auth.COOKIE]):
        raise web.HTTPSeeOther(f"{auth.PATH}{claimed}/")
    raise web.HTTPSeeOther(f"{auth.PATH}login")


@web.middleware
async def unknown_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An address under /console/{tenant}/ that no route has: the console's worded 404 page
    for whoever may see that tenant's pages, and for anyone else what a known page answers
    (the sign-in page, 403), so nothing tells a visitor which addresses exist. A known
    address asked with another method keeps its 405, and an unknown tenant its plain 404."""
    missed = request.match_info.http_exception if isinstance(
        request.match_info, MatchInfoError) else None
    tenant_id, slash, _ = request.path.removeprefix(auth.PATH).partition("/")
    tenant = services_of(request).settings.tenants.get(tenant_id) if slash else None
    if (missed is None or missed.status != 404 or tenant is None
            or not request.path.startswith(auth.PATH)):
        return await handler(request)
    who = auth.access(request, tenant)
    return render(request, "error.html", who=who, status=404,
                  message=notice(request, "err.page_unknown").format(path=request.path),
                  worded=True, back=_back(request, tenant.id), code=404)


def routes() -> list[web.RouteDef | web.StaticDef]:
    from guidebot.web.pages import console_pages

    return [
        web.get("/console", index), web.get("/console/", index),
        web.get("/console/login", login_form), web.post("/console/login", login),
        web.get("/console/login/wecom", login_wecom),
        web.post("/console/logout", logout),
        web.static("/console/static", STATIC),
        *console_pages.routes(),
    ]


def install(app: web.Application) -> None:
    """The console's pages and the metrics API (one line in the app factory)."""
    from guidebot.web.api import metrics

    app.add_routes(routes())
    app.add_routes(metrics.routes())
    app.middlewares.append(unknown_pages)
