"""The console's pages under /console/{tenant}/: overview, guides, stores (more in
console_records.py). Every figure comes from the daily statistics (guidebot/stats)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from guidebot.stats import cursor
from guidebot.stats.overview import empty_row
from guidebot.stats.targets import month_of, progress
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import (
    catalog,
    day_range,
    language,
    page,
    range_csv,
    render,
    services_of,
    today,
    wants_csv,
)


def _stats(request: web.Request) -> Any:
    stats = services_of(request).stats
    assert stats is not None
    return stats


async def _month_targets(request: web.Request, who: auth.Access, day_from: Any, day_to: Any,
                         kind: str) -> dict[str, Any]:
    """When the range is one calendar month (上月, or 本月 so far): the month and its targets
    of `kind` (guide | store), for the page to show each row's target and completion."""
    period = month_of(day_from, day_to, today(who.tenant))
    if period is None:
        return {"month": None, "goals": {}, "progress": progress}
    goals = await services_of(request).targets.goals(who.tenant.id, period)
    return {"month": period, "goals": goals[kind], "progress": progress}


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
    day_from, day_to = day_range(request, who)
    ov = await _stats(request).overview(who.tenant.id, day_from, day_to)
    ov["live_groups"] = sum((await services_of(request).groups.live_per_owner(
        who.tenant.id)).values())
    return render(request, "overview.html", who=who, active="overview", ov=ov,
                  range=ov, charts=_charts(ov, catalog(language(request))))


# 业绩目标: always the last three columns, so a sheet's columns never move; empty unless the
# range is one calendar month (上月, or 本月 so far) and the row has a target that month.
TARGET_CSV = ("target_month", "target_adds", "target_gmv_fen")
# `group_customers` is the figure group_members (群客户 at the range's end), under the column
# name the guides CSV has always had
GUIDE_CSV = ("rank", "guide", "name", "store_id", "store_name", "customers", "adds",
             "deletions", "tasks_sent", "tasks_confirmed", "orders", "gmv_fen",
             "commission_fen", "groups", "group_customers", "group_joins", "group_leaves",
             "group_net", *TARGET_CSV)
STORE_CSV = ("store_id", "store_name", "adds_code", "adds_other", "deletions", "net_growth",
             "first_purchases", "repurchases", "orders", "gmv_fen", "orders_all",
             "gmv_all_fen", "commission_fen", "group_customers", "group_joins",
             "group_leaves", "group_net", *TARGET_CSV)


def _target_cells(targets: dict[str, Any], subject: str) -> dict[str, Any]:
    """A CSV row's 业绩目标 cells: the month and its targets, "" where there is none."""
    goal = targets["goals"].get(subject)
    if goal is None:
        return dict.fromkeys(TARGET_CSV, "")
    return {"target_month": targets["month"],
            "target_adds": "" if goal.adds is None else goal.adds,
            "target_gmv_fen": "" if goal.gmv_fen is None else goal.gmv_fen}


def _table(fields: tuple[str, ...], rows: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A small table as CSV text, one page of the lists' CSV (money in integer fen)."""
    async def one_page(_: str) -> tuple[list[dict[str, Any]], None]:
        return [{k: row.get(k, 0) for k in fields} for row in rows], None
    return cursor.csv_pages(fields, one_page)


@page
async def guides(request: web.Request, who: auth.Access) -> web.StreamResponse:
    days = day_range(request, who)
    rows = await _stats(request).leaderboard(who.tenant.id, *days, "guide")
    board = await _stats(request).records.guides(who.tenant.id)
    by_guide = {r["key"]: r for r in rows if r["key"]}
    owned = await services_of(request).groups.live_per_owner(who.tenant.id)
    for guide in board:
        guide.update(by_guide.pop(guide["guide"], {}))
    board += [{"guide": k, **r} for k, r in by_guide.items()]
    for guide in board:
        guide["groups"] = owned.get(guide["guide"], 0)
    board.sort(key=lambda r: (-r.get("gmv_fen", 0), -r.get("adds", 0), r["guide"]))
    store = request.query.get("store", "")
    if store:  # one store's guides (the stores page links here)
        board = [r for r in board if r.get("store_id") == store]
    targets = await _month_targets(request, who, *days, "guide")
    if wants_csv(request):
        return await range_csv(request, who, "guides", days, _table(
            GUIDE_CSV, [{"rank": n, **r, "group_customers": r.get("group_members", 0),
                         **_target_cells(targets, r["guide"])}
                        for n, r in enumerate(board, 1)]))
    return render(request, "guides.html", who=who, active="guides", rows=board, store=store,
                  store_name=(await _stats(request).records.store_names(who.tenant.id)).get(
                      store, store) if store else "", range=days.shown,
                  export=days.export(**({"store": store} if store else {})), **targets)


@page
async def stores(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """Every store with its totals over the range: those with nothing counted show zeros
    (ranked after the rest), and sales credited to no store show as —. Above them, the
    stores.toml managers the address book does not know as current members (no 店长周报)."""
    days = day_range(request, who)
    rows = await _stats(request).leaderboard(who.tenant.id, *days, "store_id")
    names = await _stats(request).records.store_names(who.tenant.id)
    counted = {r["key"] for r in rows}
    rows += [empty_row(store) for store in sorted(names) if store not in counted]
    targets = await _month_targets(request, who, *days, "store")
    if wants_csv(request):
        return await range_csv(request, who, "stores", days, _table(
            STORE_CSV, [{"store_id": r["key"], "store_name": names.get(r["key"], ""), **r,
                         "group_customers": r.get("group_members", 0),
                         **_target_cells(targets, r["key"])} for r in rows]))
    unknown = (await services_of(request).workbench.managers(who.tenant)).unknown
    return render(request, "stores.html", who=who, active="stores", rows=rows, names=names,
                  range=days.shown, export=days.export(), unknown_managers=unknown, **targets)


def routes() -> list[web.RouteDef]:
    from guidebot.web.pages import (
        console_audit,
        console_channels,
        console_deletions,
        console_group_codes,
        console_groups,
        console_handoffs,
        console_materials,
        console_records,
        console_segments,
        console_tags,
        console_targets,
        console_transfers,
        console_watch,
    )

    base = "/console/{tenant}"
    return [
        web.get(f"{base}/", overview),
        web.get(f"{base}/guides", guides),
        web.get(f"{base}/stores", stores),
        *console_records.routes(base),
        *console_materials.routes(base),
        *console_transfers.routes(base),
        *console_groups.routes(base),
        *console_group_codes.routes(base),
        *console_channels.routes(base),
        *console_targets.routes(base),
        *console_handoffs.routes(base),
        *console_watch.routes(base),
        *console_deletions.routes(base),
        *console_segments.routes(base),
        *console_tags.routes(base),
        *console_audit.routes(base),
    ]
