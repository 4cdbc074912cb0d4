"""The console's pages under /console/{tenant}/: overview, guides, stores (more in
console_records.py). Every figure comes from the daily statistics (guidebot/stats)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from guidebot.stats.overview import parse_range
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import catalog, language, page, render, services_of, today


def _stats(request: web.Request) -> Any:
    stats = services_of(request).stats
    assert stats is not None
    return stats


def _range(request: web.Request, who: auth.Access) -> tuple[Any, Any]:
    return parse_range(request.query.get("from"), request.query.get("to"), today(who.tenant))


def _charts(ov: dict[str, Any], words: dict[str, str]) -> dict[str, Any]:
    days = ov["days"]
    funnel = ov["funnel"]
    return {
        "growth": {"days": [d["day"] for d in days], "adds": [d["adds"] for d in days],
                   "deletions": [d["deletions"] for d in days],
                   "net": [d["net_growth"] for d in days],
                   "labels": [words["fig.adds"], words["fig.deletions"],
                              words["fig.net_growth"]]},
        "funnel": [{"name": words["fig.funnel_added"], "value": funnel["added"]},
                   {"name": words["fig.first_purchases"], "value": funnel["first_purchase"]},
                   {"name": words["fig.repurchases"], "value": funnel["repurchase"]}],
        "layers": [{"name": words[f"fig.layer_{k}"], "value": v}
                   for k, v in ov["layers"].items()],
    }


@page
async def overview(request: web.Request, who: auth.Access) -> web.StreamResponse:
    day_from, day_to = _range(request, who)
    ov = await _stats(request).overview(who.tenant.id, day_from, day_to)
    return render(request, "overview.html", who=who, active="overview", ov=ov,
                  range=ov, charts=_charts(ov, catalog(language(request))))


@page
async def guides(request: web.Request, who: auth.Access) -> web.StreamResponse:
    day_from, day_to = _range(request, who)
    rows = await _stats(request).leaderboard(who.tenant.id, day_from, day_to, "guide")
    board = await _stats(request).records.guides(who.tenant.id)
    by_guide = {r["key"]: r for r in rows if r["key"]}
    for guide in board:
        guide.update(by_guide.pop(guide["guide"], {}))
    board += [{"guide": k, **r} for k, r in by_guide.items()]
    board.sort(key=lambda r: (-r.get("gmv_fen", 0), -r.get("adds", 0), r["guide"]))
    store = request.query.get("store", "")
    if store:  # one store's guides (the stores page links here)
        board = [r for r in board if r.get("store_id") == store]
    return render(request, "guides.html", who=who, active="guides", rows=board, store=store,
                  store_name=(await _stats(request).records.store_names(who.tenant.id)).get(
                      store, store) if store else "",
                  range={"from": day_from.isoformat(), "to": day_to.isoformat()})


@page
async def stores(request: web.Request, who: auth.Access) -> web.StreamResponse:
    day_from, day_to = _range(request, who)
    rows = await _stats(request).leaderboard(who.tenant.id, day_from, day_to, "store_id")
    names = await _stats(request).records.store_names(who.tenant.id)
    return render(request, "stores.html", who=who, active="stores", rows=rows, names=names,
                  range={"from": day_from.isoformat(), "to": day_to.isoformat()})


def routes() -> list[web.RouteDef]:
    from guidebot.web.pages import console_materials, console_records

    base = "/console/{tenant}"
    return [
        web.get(f"{base}/", overview),
        web.get(f"{base}/guides", guides),
        web.get(f"{base}/stores", stores),
        *console_records.routes(base),
        *console_materials.routes(base),
    ]
