"""Customer layers (new, active, dormant, lost) and value tiers as counts, so the overview
reads a few hundred rows instead of every customer.

Each known customer (first added at some time) is counted in exactly one `stats_layer_adds`
cell (add day, still following a guide, value tier) and, if it still follows and has bought,
in one `stats_layer_buyers` cell (last-purchase day, add day). The upkeep moves a customer
from its old cells to its new ones whenever it changes (`Moves`); the layers of a range are
then sums over these cells (`from_counts`), the same figures as reading every customer's facts
against the definitions in stats/definitions.py. Days are in the tenant's time zone, and the
range's end is a midnight there, so a day-level comparison is exact."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from guidebot.stats import definitions as d

NO_TIER = "none"
AddsCell = tuple[str, bool, str]  # add day, following, tier
BuyerCell = tuple[str, str]  # last-purchase day, add day
Cells = tuple[AddsCell | None, BuyerCell | None]


class CustomerFacts(Protocol):
    first_added_at: datetime | None
    following: int
    gmv_fen: int
    last_paid_at: datetime | None


def tier_of(gmv_fen: int) -> str:
    for name, floor in d.VALUE_TIERS:  # highest first
        if gmv_fen >= floor:
            return name
    return NO_TIER


def cells(customer: CustomerFacts, zone: ZoneInfo) -> Cells:
    """Where one customer is counted (nowhere until its first add is known)."""
    if customer.first_added_at is None:
        return None, None
    add_day = customer.first_added_at.astimezone(zone).date().isoformat()
    following = customer.following > 0
    adds = (add_day, following, tier_of(customer.gmv_fen))
    if not following or customer.last_paid_at is None:
        return adds, None
    return adds, (customer.last_paid_at.astimezone(zone).date().isoformat(), add_day)


class Moves:
    """Customers' moves between cells gathered in memory: -1 from the old, +1 to the new."""

    def __init__(self) -> None:
        self.adds: dict[AddsCell, int] = defaultdict(int)
        self.buyers: dict[BuyerCell, int] = defaultdict(int)

    def move(self, before: Cells, after: Cells) -> None:
        if before == after:
            return
        for cell, delta in ((before, -1), (after, 1)):
            if cell[0] is not None:
                self.adds[cell[0]] += delta
            if cell[1] is not None:
                self.buyers[cell[1]] += delta

    def count(self, every: Iterable[Cells]) -> None:
        for after in every:
            self.move((None, None), after)


def bounds(day_from: date, day_to: date) -> dict[str, str]:
    """The day limits of a range's layers (definitions.NEW_WITHIN, ACTIVE_WITHIN)."""
    end = day_to + timedelta(days=1)
    return {"from": day_from.isoformat(), "to": day_to.isoformat(),
            "new_from": (end - d.NEW_WITHIN).isoformat(),
            "active_from": (end - d.ACTIVE_WITHIN).isoformat()}
