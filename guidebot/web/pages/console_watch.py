"""The console's 会话质检 page: the 微信客服 messages holding a word of
content_library/chat/watch_words.toml in a range of days, counted per guide and per rule and
listed with their text, filtered by guide and rule (chat/watch.py; the admin API's
`GET …/chat/flags`)."""

from __future__ import annotations

from aiohttp import web

from guidebot.stats.overview import parse_range
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import page, render, services_of


@page
async def watch(request: web.Request, who: auth.Access) -> web.StreamResponse:
    service = services_of(request).watch
    today = service.clock().astimezone(who.tenant.tz).date()
    day_from, day_to = parse_range(request.query.get("from"), request.query.get("to"), today)
    guide, rule = request.query.get("guide") or None, request.query.get("rule") or None
    report = await service.report(who.tenant.id, day_from, day_to, guide=guide, rule=rule)
    guides = [g["guide"] for g in report["guides"] if g["guide"]]
    if guide and guide not in guides:
        guides.append(guide)
    return render(request, "watch.html", who=who, active="watch", report=report,
                  guides=guides, q={"guide": guide or "", "rule": rule or ""},
                  range={"from": day_from.isoformat(), "to": day_to.isoformat()})


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/watch", watch)]
