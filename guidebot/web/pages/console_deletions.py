"""The console's 员工删人记录 page: the customers guides deleted in a range of days, with the
orders credited to that guide from each (stats/deletions.py), and its CSV."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from guidebot.stats import deletions
from guidebot.stats.overview import parse_range
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import csv_download, page, render, services_of, today


@page
async def guide_deletions(request: web.Request, who: auth.Access) -> web.StreamResponse:
    day_from, day_to = parse_range(request.query.get("from"), request.query.get("to"),
                                   today(who.tenant))
    db = services_of(request).db
    span = {"from": day_from.isoformat(), "to": day_to.isoformat()}
    if request.query.get("format") == "csv":
        chunks = deletions.export_csv(db, who.tenant.id, who.tenant.tz, day_from, day_to)
        return await csv_download(
            request, f"guide-deletions-{who.tenant.id}-{span['from']}-{span['to']}.csv",
            chunks)
    rows = await deletions.guide_deletions(db, who.tenant.id, who.tenant.tz, day_from, day_to)
    return render(request, "deletions.html", who=who, active="deletions", rows=rows,
                  listed_max=deletions.LISTED_MAX, range=span,
                  export=urlencode({**span, "format": "csv"}))


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/deletions", guide_deletions)]
