"""The console's 会话质检 page: the 微信客服 messages holding a word of
content_library/chat/watch_words.toml in a range of days, counted per guide and per rule and
listed with their text, filtered by guide and rule (chat/watch.py; the admin API's
`GET …/chat/flags`)."""

from __future__ import annotations

from aiohttp import web

from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import day_range, page, render, services_of


@page
async def watch(request: web.Request, who: auth.Access) -> web.StreamResponse:
    service = services_of(request).watch
    days = day_range(request, who, clock=service.clock)
    guide, rule = request.query.get("guide") or None, request.query.get("rule") or None
    report = await service.report(who.tenant.id, *days, guide=guide, rule=rule)
    guides = [g["guide"] for g in report["guides"] if g["guide"]]
    if guide and guide not in guides:
        guides.append(guide)
    return render(request, "watch.html", who=who, active="watch", report=report,
                  guides=guides, q={"guide": guide or "", "rule": rule or ""},
                  range=days.shown,  # the quick range links keep the guide and rule
                  range_filters={k: v for k, v in (("guide", guide), ("rule", rule)) if v})


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/watch", watch)]
