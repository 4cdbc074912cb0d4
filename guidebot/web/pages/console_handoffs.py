"""The console's 接待时效 page: per guide, how fast the 微信客服 conversations handed to them
were first answered in a range of days, and the customers waiting for a reply now
(chat/reply_times.py; the admin API's `GET …/handoffs/summary` and `…/handoffs`)."""

from __future__ import annotations

from aiohttp import web

from guidebot.stats.overview import parse_range
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import page, render, services_of


def duration(seconds: int | None) -> str:
    """A first response or a wait as the page shows it: "42s", "5m 03s", "2h 05m"; "—"."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


@page
async def handoffs(request: web.Request, who: auth.Access) -> web.StreamResponse:
    times = services_of(request).reply_times
    today = times.clock().astimezone(who.tenant.tz).date()
    day_from, day_to = parse_range(request.query.get("from"), request.query.get("to"), today)
    summary = await times.summary(who.tenant.id, day_from, day_to)
    waiting = await times.listing(who.tenant.id, "waiting", day_from, day_to)
    return render(request, "handoffs.html", who=who, active="handoffs", summary=summary,
                  waiting=waiting["items"], duration=duration,
                  range={"from": day_from.isoformat(), "to": day_to.isoformat()})


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/handoffs", handoffs)]
