"""The customer list behind the console's customers page, its CSV export and the admin API's
listing: one search (text, tag, guide, status), newest customers first, read a page at a time
from an opaque cursor, so a tenant with a million customers pages and exports without any
query sorting them all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from guidebot.contacts import profile_fields as profile
from guidebot.content.profile_fields import ProfileField
from guidebot.db.engine import Database
from guidebot.db.repo import console as repo
from guidebot.db.repo import profile_fields as fields_repo
from guidebot.errors import ValidationFailed
from guidebot.stats import cursor

STATUSES = repo.CUSTOMER_STATUSES
EXPORT_PAGE = 1000
YEARS = (1970, 2199)  # the days an added-time filter may name
CSV_FIELDS = ("external_userid", "name", "status", "guides", "former_guides", "tags",
              "opted_out", "added_at", "lost_at")


@dataclass(frozen=True)
class CustomerSearch:
    text: str = ""
    tag: str = ""
    guide: str = ""
    status: str = ""  # "", or one of STATUSES
    added: tuple[datetime | None, datetime | None] = (None, None)  # [from, to) instants
    more: repo.Conditions | None = None  # a saved segment's further conditions

    def __post_init__(self) -> None:
        if self.status and self.status not in STATUSES:
            raise ValidationFailed(f"status: one of {', '.join(STATUSES)}, or none",
                                   code="cust.bad_status")
        object.__setattr__(self, "text", self.text.strip()[:64])


def added_between(raw_from: str, raw_to: str, zone: tzinfo
                  ) -> tuple[datetime | None, datetime | None]:
    """`added_from` / `added_to` (YYYY-MM-DD, the tenant's days, both included, each
    optional) as the instants [from, to) the customers' arrival is compared with."""
    try:
        day_from = date.fromisoformat(raw_from) if raw_from else None
        day_to = date.fromisoformat(raw_to) + timedelta(days=1) if raw_to else None
    except (ValueError, OverflowError):  # not a date, or the last day there is
        day_from = day_to = date.min
    if any(d is not None and not YEARS[0] <= d.year <= YEARS[1] for d in (day_from, day_to)):
        raise ValidationFailed("added_from, added_to: dates as YYYY-MM-DD",
                               code="range.dates")
    if day_from and day_to and day_from >= day_to:
        raise ValidationFailed("added_from must not be after added_to", code="range.order")
    return (datetime.combine(day_from, time(0), tzinfo=zone) if day_from else None,
            datetime.combine(day_to, time(0), tzinfo=zone) if day_to else None)


@dataclass(frozen=True)
class CustomerPage:
    rows: list[dict[str, Any]]
    next: str | None  # the cursor of the page after this one; None on the last page


async def page(db: Database, tenant: str, search: CustomerSearch, *, limit: int,
               after: str = "") -> CustomerPage:
    """Up to `limit` customers the search finds, after the cursor when one is given."""
    before = cursor.decode(after) if after else None
    async with db.read() as s:
        rows = await repo.search_customers(s, tenant=tenant, text=search.text, tag=search.tag,
                                           guide=search.guide, status=search.status,
                                           added=search.added, before=before,
                                           limit=limit + 1, more=search.more)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return CustomerPage(rows, cursor.encode(last["added_at"], last["external_userid"])
                        if last else None)


def listed(row: dict[str, Any]) -> dict[str, Any]:
    """A found customer as the admin API lists it (instants as ISO 8601 UTC)."""
    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at is not None else None
    return {"external_userid": row["external_userid"], "name": row["name"],
            "status": row["status"], "tags": row["tags"], "opted_out": row["opted_out"],
            "added_at": iso(row["added_at"]), "lost_at": iso(row["lost_at"]),
            "follows": [{"guide": f["guide"], "status": f["status"],
                         "added_at": iso(f["added_at"]), "ended_at": iso(f["ended_at"])}
                        for f in row["follows"]]}


def _csv_row(row: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    live = [f["guide"] for f in row["follows"] if f["status"] in repo.FOLLOWING]
    former = [f["guide"] for f in row["follows"] if f["status"] not in repo.FOLLOWING]
    return {
        "external_userid": row["external_userid"], "name": row["name"],
        "status": row["status"], "guides": ";".join(live), "former_guides": ";".join(former),
        "tags": ";".join(row["tags"]), "opted_out": "yes" if row["opted_out"] else "no",
        "added_at": _local(row["added_at"], zone), "lost_at": _local(row["lost_at"], zone)}


def _local(at: datetime | None, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if at is not None else ""


def export_csv(db: Database, tenant: str, zone: tzinfo, search: CustomerSearch, *,
               fields: Sequence[ProfileField] = ()) -> AsyncIterator[str]:
    """Every customer the search finds as CSV text, a page of EXPORT_PAGE at a time (each page
    its own short read), header first; times in the tenant's zone. `fields`: the profile
    fields in force (客户资料), one column each (field:<id>) after the others."""
    async def pages(after: str) -> tuple[list[dict[str, Any]], str | None]:
        found = await page(db, tenant, search, limit=EXPORT_PAGE, after=after)
        stored: dict[str, dict[str, str]] = {}
        if fields and found.rows:
            async with db.read() as s:
                stored = await fields_repo.of_customers(
                    s, tenant=tenant, customers=[r["external_userid"] for r in found.rows])
        return [{**_csv_row(row, zone),
                 **profile.csv_cells(fields, stored.get(row["external_userid"], {}))}
                for row in found.rows], found.next
    return cursor.csv_pages([*CSV_FIELDS, *profile.csv_columns(fields)], pages)
