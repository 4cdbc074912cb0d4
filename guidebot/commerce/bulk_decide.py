"""One piece of a bulk run: its facts read, its orders decided, its rows built.

A piece is a run of whole clusters (guidebot.commerce.clusters) inside one bulk transaction.
Its known orders, links, touches and bindings are read set-based; each order is decided by the
per-order path's own functions (recording.decide_order, attribution.decide; only the search for
the latest touch differs: a bisect instead of a scan); the rows come back for the caller to
write. The in-process bulk path runs this on the bulk transaction's connection, the bulk
worker process (guidebot.commerce.bulk_worker) on a reader of its own: a piece's facts are
the same either way, because no other writer can commit while the bulk transaction holds its
lock and the transaction's own uncommitted rows belong to other clusters.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from guidebot.commerce import attribution, recording
from guidebot.commerce.resolver import KnownIdentities
from guidebot.commerce.rules import RuleSet
from guidebot.commerce.schema import PaidOrder
from guidebot.db.repo import commerce_driver as driver

_EXT = 6  # where a touch row (driver.TOUCH_FIELDS) has external_userid, then unionid, openid

Reserve = Callable[[int], Awaitable[Iterator[int]]]  # touch ids for this many new touches


def touch_ids(conn: driver.BulkConnection, first: int | None) -> Reserve:
    """Ids for a bulk transaction's tracking touches: on SQLite counted on from `first` (the
    first free id when the transaction began; no other writer can take one meanwhile), on
    PostgreSQL (first = None) from the sequence."""
    if first is None:
        async def from_sequence(count: int) -> Iterator[int]:
            return iter(await driver.reserve_touch_ids(conn, count=count))
        return from_sequence
    counter = itertools.count(first)

    async def counted(_count: int) -> Iterator[int]:
        return counter
    return counted


class Versions:
    """The tenant's rule versions, from (effective_at, rules JSON, id) in effective order."""

    def __init__(self, versions: Sequence[tuple[datetime, str, int]]) -> None:
        self.spec = tuple(versions)
        self.starts = [v[0] for v in versions]
        self.rules = [RuleSet.from_json(v[1]) for v in versions]
        self.windows = [timedelta(days=r.share_link_window_days) for r in self.rules]
        self.ids = [v[2] for v in versions]
        self.many = len(versions) > 1

    def at(self, paid_at: datetime) -> int:
        """The version in force at paid_at; before the first version, the first one."""
        return max(bisect.bisect_right(self.starts, paid_at) - 1, 0)


@dataclass(frozen=True)
class Terms:
    """What the bulk transaction fixes for its pieces."""

    tenant: str
    now_key: Any  # the transaction's time, encoded: received_at and created_at of its rows
    period: str  # the open ledger period of that time


@dataclass
class Piece:
    """A piece's rows (driver column orders) and what the writer does besides inserting."""

    orders: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    touches: list[tuple[Any, ...]] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)  # to create on first sight
    # (unionid, openid, customer) of orders that teach them: remember_in after the insert
    learned: list[tuple[str | None, str | None, str]] = field(default_factory=list)
    duplicate: int = 0  # orders already recorded


class Touches:
    """A piece's touches by external_userid, unionid and openid, each list in rank order
    (at, is an order's token, id). Times are the connection's encoded times."""

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.by: tuple[dict[str, list[tuple[Any, ...]]], ...] = (
            defaultdict(list), defaultdict(list), defaultdict(list))
        self.claimed: dict[int, str] = {}  # touch id → the customer that claimed it
        by_customer = self.by[0]
        for row in rows:
            if len(row) == _EXT + 1:  # known by external_userid only: the usual row
                by_customer[row[_EXT]].append(row)
            else:
                self._index(row, insort=False)
        for index in self.by:
            for touches in index.values():
                touches.sort()

    def _index(self, row: tuple[Any, ...], *, insort: bool) -> None:
        for index, key in zip(self.by, row[_EXT:], strict=False):
            if key is not None:
                if insort:
                    bisect.insort(index[key], row)
                else:
                    index[key].append(row)

    def latest(self, customer: str | None, unionid: str | None, openid: str | None,
               paid_at: Any) -> tuple[Any, ...] | None:
        """The highest-ranked touch of any of the ids at or before paid_at: the one
        attribution.latest_touch picks if it is inside the window (else none is)."""
        after = (paid_at, 2)  # ranks above every touch at paid_at (is_order is 0 or 1)
        if unionid is None and openid is None:  # the usual order: its customer's touches
            touches = self.by[0].get(customer) if customer is not None else None
            if not touches:
                return None
            i = bisect.bisect_right(touches, after) - 1
            return touches[i] if i >= 0 else None
        best = None
        for index, key in ((self.by[0], customer), (self.by[1], unionid),
                           (self.by[2], openid)):
            touches = index.get(key) if key is not None else None
            if touches:
                i = bisect.bisect_right(touches, after) - 1
                if i >= 0 and (best is None or touches[i] > best):
                    best = touches[i]
        return best

    def add(self, row: tuple[Any, ...]) -> None:
        self._index(row, insort=True)

    def external_userid(self, row: tuple[Any, ...]) -> str | None:
        return self.claimed.get(row[2], row[_EXT])

    def claim(self, customer: str, unionid: str | None, openid: str | None) -> None:
        """commerce_links.claim_touches in memory: unclaimed touches of the ids are the
        customer's from now on."""
        for index, key in ((self.by[1], unionid), (self.by[2], openid)):
            for row in list(index.get(key, ())) if key else ():
                if self.external_userid(row) is None:
                    self.claimed[row[2]] = customer
                    bisect.insort(self.by[0][customer], row)


async def decide_piece(conn: driver.BulkConnection, terms: Terms, versions: Versions,
                       identities: KnownIdentities, orders: Sequence[PaidOrder],
                       reserve: Reserve) -> Piece:
    """Read the piece's facts and decide its orders (whole clusters, in paid_at order)."""
    tenant = terms.tenant
    known = await driver.known_orders(conn, tenant=tenant, order_nos=[o.order_no for o in orders])
    links = await driver.links_by_token(
        conn, tenant=tenant, tokens=sorted({o.tracking for o in orders if o.tracking}))
    ids = await reserve(sum(1 for o in orders if o.tracking in links))
    touches, bindings = await _facts(conn, tenant, versions, identities, orders)
    decider = _Decider(conn, terms, versions, identities, links, touches, bindings, ids)
    piece = Piece()
    for order in orders:
        if order.order_no in known:
            piece.duplicate += 1
        else:
            known.add(order.order_no)
            decider.one(order, piece)
    piece.touches = decider.tracking_touches()
    piece.customers = sorted(decider.customers)
    return piece


async def _facts(conn: driver.BulkConnection, tenant: str, versions: Versions,
                 identities: KnownIdentities, orders: Sequence[PaidOrder]) -> tuple[
        Touches, dict[str, list[attribution.BindingFact]]]:
    """The piece's customers' touches and bindings, and its unionids'/openids' touches."""
    customers = sorted(identities.customers_of(orders))
    unionids = sorted({o.customer.unionid for o in orders if o.customer.unionid})
    openids = sorted({o.customer.openid for o in orders if o.customer.openid})
    start = conn.encode(min(o.paid_at for o in orders) - max(versions.windows))
    end = conn.encode(max(o.paid_at for o in orders))
    rows: list[tuple[Any, ...]] = []
    bindings: dict[str, list[attribution.BindingFact]] = defaultdict(list)
    if customers:
        for b in await driver.bindings_of(conn, tenant=tenant, customers=customers):
            bindings[b[0]].append(attribution.BindingFact(b[1], b[2], b[3], b[4], b[5]))
        rows = await driver.customer_touches(conn, tenant=tenant, customers=customers,
                                             start=start, end=end)
    if unionids or openids:
        identified = await driver.identified_touches(
            conn, tenant=tenant, unionids=unionids, openids=openids, start=start, end=end)
        rows = list({r[2]: r for r in [*rows, *identified]}.values())  # full rows win
    return Touches(rows), bindings


class _Decider:
    """The per-order path's decisions over a piece's facts, with its rows."""

    def __init__(self, conn: driver.BulkConnection, terms: Terms, versions: Versions,
                 identities: KnownIdentities, links: dict[str, driver.Link], touches: Touches,
                 bindings: dict[str, list[attribution.BindingFact]],
                 ids: Iterator[int]) -> None:
        self.conn, self.terms, self.versions, self.identities = conn, terms, versions, identities
        self.links, self.touches, self.bindings, self.ids = links, touches, bindings, ids
        self.customers: set[str] = set()
        self.new_touches: list[tuple[tuple[Any, ...], PaidOrder, driver.Link]] = []

    def one(self, order: PaidOrder, piece: Piece) -> None:
        ref, versions, conn, terms = order.customer, self.versions, self.conn, self.terms
        customer = ref.external_userid or self.identities.resolve(ref)
        index = versions.at(order.paid_at) if versions.many else 0
        link = self.links.get(order.tracking) if order.tracking else None
        paid_key = conn.encode(order.paid_at)
        if link is not None:  # at paid_at it outranks every other touch
            touch = recording.own_touch(order, link)
        else:
            touch = None
            row = self.touches.latest(customer, ref.unionid, ref.openid, paid_key)
            if row is not None:
                at = conn.decode(row[0])
                if at >= order.paid_at - versions.windows[index]:
                    touch = attribution.TouchFact(row[3], at, row[4], row[5], row[2])
        decision = recording.decide_order(
            versions.rules[index], order, touch=touch,
            bindings=self.bindings.get(customer, ()) if customer else (),
            link_known=link is not None)
        piece.orders.append(recording.order_row(terms.tenant, order, customer, decision,
                                                versions.ids[index], paid_at=paid_key,
                                                received_at=terms.now_key))
        guide = decision.attribution.guide
        if guide:
            piece.entries.append(recording.earn_row(
                terms.tenant, order.order_no, guide, decision.commission_fen,
                period=terms.period, created_at=terms.now_key))
        if customer:
            self.customers.add(customer)
            if ref.unionid or ref.openid:  # OrderService: remember_in after the insert
                self.identities.learn(ref, customer)
                piece.learned.append((ref.unionid, ref.openid, customer))
                self.touches.claim(customer, ref.unionid, ref.openid)
        if link is not None:
            row = (paid_key, True, next(self.ids), link.guide, link.token, "order", customer,
                   ref.unionid, ref.openid)
            self.touches.add(row)
            self.new_touches.append((row, order, link))

    def tracking_touches(self) -> list[tuple[Any, ...]]:
        """The tracking touches' rows, with the customer of any that a later order claimed."""
        tenant = self.terms.tenant
        return [recording.tracking_touch_row(row[2], tenant, order,
                                             self.touches.external_userid(row), link, at=row[0])
                for row, order, link in self.new_touches]
