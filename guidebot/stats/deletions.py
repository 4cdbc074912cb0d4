"""员工删人记录: the customers guides deleted themselves (del_external_contact, not a transfer's
handover) over a range of the tenant's days, each with the orders credited to that guide
from that customer (count and paid amount, before refunds), for the console's page and its
CSV. Read from the follow events (ix_follow_events_tenant_at)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guidebot.db.engine import Database
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.stats import cursor

LISTED_MAX = 500  # rows the page shows (newest first)
EXPORT_MAX = 20_000  # rows the CSV holds
CSV_FIELDS = ("deleted_at", "guide", "guide_name", "external_userid", "customer_name",
              "orders", "paid_fen")


async def guide_deletions(db: Database, tenant: str, zone: ZoneInfo, day_from: date,
                          day_to: date, *, limit: int = LISTED_MAX) -> list[dict[str, Any]]:
    """The deletions in [day_from, day_to] (the tenant's days, both included), newest first."""
    start = datetime.combine(day_from, time(0), tzinfo=zone)
    end = datetime.combine(day_to + timedelta(days=1), time(0), tzinfo=zone)
    async with db.read() as s:
        rows = await contacts_repo.guide_deletions(s, tenant=tenant, start=start, end=end,
                                                   limit=limit)
        totals = await orders_repo.credited_totals(
            s, tenant=tenant, external_userids=sorted({r["external_userid"] for r in rows}))
    for row in rows:
        row["orders"], row["paid_fen"] = totals.get((row["guide"], row["external_userid"]),
                                                    (0, 0))
    return rows


def export_csv(db: Database, tenant: str, zone: ZoneInfo, day_from: date,
               day_to: date) -> AsyncIterator[str]:
    """The range's deletions as CSV text, header first; times in the tenant's zone."""
    async def pages(after: str) -> tuple[list[dict[str, Any]], str | None]:
        rows = await guide_deletions(db, tenant, zone, day_from, day_to, limit=EXPORT_MAX)
        return [{"deleted_at": r["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                 **{k: r[k] for k in CSV_FIELDS if k != "deleted_at"}} for r in rows], None
    return cursor.csv_pages(CSV_FIELDS, pages)
