"""The orders behind the console's orders page and its CSV export: the orders paid in a range
of days (the tenant's), latest first, a page at a time from an opaque cursor, each with the
attribution decided when it arrived."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import console as repo
from guidebot.settings import TenantSettings
from guidebot.stats import cursor

EXPORT_PAGE = 2000
CSV_FIELDS = ("order_no", "paid_at", "external_userid", "customer", "amount_fen", "rule",
              "guide", "credited_store", "store_id", "commission_fen", "tracking")


@dataclass(frozen=True)
class OrderPage:
    rows: list[Any]  # Order rows
    customers: dict[str, str]  # the page's customers' names
    next: str | None  # the cursor of the page after this one; None on the last page


async def page(db: Database, tenant: TenantSettings, day_from: date, day_to: date, *,
               limit: int, after: str = "") -> OrderPage:
    """Up to `limit` orders paid from day_from to day_to (inclusive, the tenant's days),
    after the cursor when one is given."""
    before = cursor.decode(after) if after else None
    start, end = tenant.day_bounds(day_from, day_to)
    async with db.read() as s:
        rows = list(await repo.orders_between(s, tenant=tenant.id, start=start, end=end,
                                              limit=limit + 1, before=before))
        more = len(rows) > limit
        rows = rows[:limit]
        names = await repo.customer_names(
            s, tenant=tenant.id,
            external_userids=[o.external_userid for o in rows if o.external_userid])
    last = rows[-1] if more and rows else None
    return OrderPage(rows, names, cursor.encode(last.paid_at, last.order_no) if last else None)


def export_csv(db: Database, tenant: TenantSettings, day_from: date,
               day_to: date) -> AsyncIterator[str]:
    """Every order paid in the range as CSV text (money in integer fen, times in the
    tenant's zone), a page of EXPORT_PAGE at a time, header first."""
    async def pages(after: str) -> tuple[list[dict[str, Any]], str | None]:
        found = await page(db, tenant, day_from, day_to, limit=EXPORT_PAGE, after=after)
        return [{
            "order_no": o.order_no,
            "paid_at": o.paid_at.astimezone(tenant.tz).strftime("%Y-%m-%d %H:%M:%S"),
            "external_userid": o.external_userid or "",
            "customer": found.customers.get(o.external_userid or "", ""),
            "amount_fen": o.amount_fen, "rule": o.rule, "guide": o.guide or "",
            "credited_store": o.credited_store or "", "store_id": o.store_id or "",
            "commission_fen": o.commission_fen, "tracking": o.tracking}
            for o in found.rows], found.next
    return cursor.csv_pages(CSV_FIELDS, pages)
