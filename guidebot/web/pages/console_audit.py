"""The console's 操作日志 page: HQ's changes and sign-ins in a range of the tenant's days,
newest first, 100 a page, by actor; each action in words where the catalog has a label for its
route (`audit.action.<METHOD path>`, every audited route has one), else its method and path
template; and its CSV. The actor filter takes what the table shows (the admin token's words in
either language, a guide's name) as well as the stored actor."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from guidebot.audit.log import TOKEN_ACTOR, Entry
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import (
    LANGS,
    catalog,
    day_range,
    language,
    page,
    range_csv,
    render,
    services_of,
    wants_csv,
)


def _action(words: dict[str, str], entry: Entry) -> str:
    if entry.action.startswith(("sign_in", "sign_out")):
        how = entry.params.get("method", "")
        said = words[f"audit.{entry.action}"]
        return words["audit.with_method"].format(
            action=said, method=words.get(f"audit.method.{how}", how)) if how else said
    return words.get(f"audit.action.{entry.action}", entry.action)


def _stored_actor(typed: str, names: dict[str, str]) -> str:
    """The actor as stored for what the filter was given: the admin token's words as the
    table shows them (in either language, any case) are "admin token"; a guide's name is
    their userid; anything else is taken as typed (a userid)."""
    token = {TOKEN_ACTOR} | {catalog(lang)[key].casefold() for lang in LANGS
                             for key in ("audit.token_actor", "audit.method.token")}
    if typed.casefold() in token:
        return TOKEN_ACTOR
    by_name = {name: userid for userid, name in names.items()}
    return typed if typed in names else by_name.get(typed, typed)


@page
async def audit(request: web.Request, who: auth.Access) -> web.StreamResponse:
    days = day_range(request, who, clock=services_of(request).audit.clock)
    actor = request.query.get("actor", "").strip()[:64]
    log = services_of(request).audit
    names = await services_of(request).stats.records.guide_names(who.tenant.id)
    stored = _stored_actor(actor, names) if actor else ""
    kept = {"actor": actor} if actor else {}
    if wants_csv(request):
        return await range_csv(request, who, "audit", days,
                               log.export(who.tenant, *days, actor=stored))
    found = await log.page(who.tenant, *days, actor=stored,
                           after=request.query.get("after", ""))
    words = catalog(language(request))
    rows: list[dict[str, Any]] = [
        {"at": e.at, "actor": e.actor, "action": _action(words, e), "template": e.action,
         "params": e.params, "status": e.status} for e in found.entries]
    span = {**kept, **days.shown}
    return render(request, "audit.html", who=who, active="audit", rows=rows, actor=actor,
                  names=names, range=days.shown, range_filters=kept, export=days.export(**kept),
                  next_page=urlencode({**span, "after": found.next}) if found.next else "",
                  paged=bool(request.query.get("after")), first_page=urlencode(span))


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/audit", audit)]
