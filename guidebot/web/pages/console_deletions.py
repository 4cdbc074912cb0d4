"""The console's 员工删人记录 page: the customers guides deleted in a range of days, with the
orders credited to that guide from each (stats/deletions.py), and its CSV."""

from __future__ import annotations

from aiohttp import web

from guidebot.stats import deletions
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import (
    day_range,
    page,
    range_csv,
    render,
    services_of,
    wants_csv,
)


@page
async def guide_deletions(request: web.Request, who: auth.Access) -> web.StreamResponse:
    days = day_range(request, who)
    db = services_of(request).db
    if wants_csv(request):
        return await range_csv(request, who, "guide-deletions", days, deletions.export_csv(
            db, who.tenant.id, who.tenant.tz, *days))
    rows = await deletions.guide_deletions(db, who.tenant.id, who.tenant.tz, *days)
    return render(request, "deletions.html", who=who, active="deletions", rows=rows,
                  listed_max=deletions.LISTED_MAX, range=days.shown, export=days.export())


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/deletions", guide_deletions)]
