"""The console's 接待时效 page: per guide, how fast the 微信客服 conversations handed to them
were first answered in a range of days, and the customers waiting for a reply now
(chat/reply_times.py; the admin API's `GET …/handoffs/summary` and `…/handoffs`)."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import catalog, day_range, language, page, render, services_of


def duration(words: dict[str, str], seconds: int | None) -> str:
    """A first response or a wait in the page's language: "42 秒", "5 分 03 秒", "2 小时 05 分"
    ("42s", "5m 03s", "2h 05m"); "—" for none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return words["hand.dur_s"].format(s=seconds)
    if seconds < 3600:
        return words["hand.dur_ms"].format(m=seconds // 60, s=f"{seconds % 60:02d}")
    return words["hand.dur_hm"].format(h=seconds // 3600, m=f"{seconds % 3600 // 60:02d}")


@page
async def handoffs(request: web.Request, who: auth.Access) -> web.StreamResponse:
    times = services_of(request).reply_times
    days = day_range(request, who, clock=times.clock)
    summary = await times.summary(who.tenant.id, *days)
    waiting = await times.listing(who.tenant.id, "waiting", *days)
    return render(request, "handoffs.html", who=who, active="handoffs", summary=summary,
                  waiting=waiting["items"],
                  duration=partial(duration, catalog(language(request))),
                  range=days.shown)


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/handoffs", handoffs)]
