"""Bulk attribution for backfills: the per-order path's decisions with set-based I/O.

The result equals recording the orders one by one with OrderService.paid in paid_at order
(resolve_remote=False; no events are published). Orders interact only through a shared
customer, unionid or openid (guidebot.commerce.clusters), so each cluster of linked orders is
taken whole, in paid_at order. A chunk of clusters is one transaction: its known orders,
held refunds, links, touches and bindings are read set-based; each order is decided by the
same functions as the per-order path (the latest touch found by bisect instead of a scan);
orders, tracking touches, earn entries and customers go in with multi-row inserts; held
refunds of the chunk's orders are applied last, as the per-order path applies them.
"""

from __future__ import annotations

import bisect
import gc
import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.commerce import attribution, ledger, periods, recording
from guidebot.commerce.clusters import Clusters
from guidebot.commerce.identity import remember_in
from guidebot.commerce.orders import apply_refund, ensure_rules
from guidebot.commerce.rules import RuleSet
from guidebot.commerce.schema import PaidOrder
from guidebot.db.engine import Database
from guidebot.db.models_commerce import RuleVersion
from guidebot.db.repo import commerce_bulk as repo
from guidebot.db.repo import commerce_ledger as ledger_repo
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.settings import TenantSettings

CHUNK = 50_000  # orders per transaction (about two seconds of holding the write lock)
_AT = operator.itemgetter(0)
_EXT = 6  # where a touch row (repo.TOUCH_FIELDS) has external_userid, then unionid, openid


@dataclass
class BulkResult:
    recorded: int = 0
    duplicate: int = 0
    refunds_applied: list[str] = field(default_factory=list)


class _Versions:
    def __init__(self, versions: Sequence[RuleVersion]) -> None:
        self.starts = [v.effective_at for v in versions]
        self.versions = list(versions)
        self.rules = [RuleSet.from_json(v.rules) for v in versions]
        self.windows = [timedelta(days=r.share_link_window_days) for r in self.rules]
        self.ids = [int(v.id or 0) for v in versions]
        self.many = len(versions) > 1

    def at(self, paid_at: datetime) -> int:
        """The version in force at paid_at; before the first version, the first one."""
        return max(bisect.bisect_right(self.starts, paid_at) - 1, 0)


class _Touches:
    """A chunk's touches by external_userid, unionid and openid, each list in rank order
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
                self._index(row, bisect=False)
        for index in self.by:
            for touches in index.values():
                touches.sort()

    def _index(self, row: tuple[Any, ...], *, bisect: bool) -> None:
        for index, key in zip(self.by, row[_EXT:], strict=False):
            if key is not None:
                if bisect:
                    _insort(index[key], row)
                else:
                    index[key].append(row)

    def latest(self, customer: str | None, unionid: str | None, openid: str | None,
               paid_at: Any) -> tuple[Any, ...] | None:
        """The highest-ranked touch of any of the ids at or before paid_at: the one
        attribution.latest_touch picks if it is inside the window (else none is)."""
        if unionid is None and openid is None:  # the usual order: its customer's touches
            touches = self.by[0].get(customer) if customer is not None else None
            if not touches:
                return None
            i = bisect.bisect_right(touches, paid_at, key=_AT) - 1
            return touches[i] if i >= 0 else None
        best = None
        for index, key in ((self.by[0], customer), (self.by[1], unionid),
                           (self.by[2], openid)):
            touches = index.get(key) if key is not None else None
            if touches:
                i = bisect.bisect_right(touches, paid_at, key=_AT) - 1
                if i >= 0 and (best is None or touches[i] > best):
                    best = touches[i]
        return best

    def add(self, row: tuple[Any, ...]) -> None:
        self._index(row, bisect=True)

    def external_userid(self, row: tuple[Any, ...]) -> str | None:
        return self.claimed.get(row[2], row[_EXT])

    def claim(self, customer: str, unionid: str | None, openid: str | None) -> None:
        """commerce_links.claim_touches in memory: unclaimed touches of the ids are the
        customer's from now on."""
        for index, key in ((self.by[1], unionid), (self.by[2], openid)):
            for row in list(index.get(key, ())) if key else ():
                if self.external_userid(row) is None:
                    self.claimed[row[2]] = customer
                    _insort(self.by[0][customer], row)


def _insort(rows: list[tuple[Any, ...]], row: tuple[Any, ...]) -> None:
    bisect.insort(rows, row)


async def record_many(db: Database, tenant: TenantSettings, orders: Sequence[PaidOrder],
                      clock: Callable[[], datetime],
                      progress: Callable[[int], None] | None = None) -> BulkResult:
    """Attribute and ledger paid orders; identities are resolved from stored mappings."""
    collecting = gc.isenabled()
    gc.disable()  # millions of acyclic tuples: the cycle collector would rescan them again
    try:  # and again (refcounting frees them all the same)
        return await _record_many(db, tenant, orders, clock, progress)
    finally:
        if collecting:
            gc.enable()


async def _record_many(db: Database, tenant: TenantSettings, orders: Sequence[PaidOrder],
                       clock: Callable[[], datetime],
                       progress: Callable[[int], None] | None) -> BulkResult:
    result = BulkResult()
    async with db.write() as s:
        await ensure_rules(s, tenant, clock())
        versions = _Versions(await repo.rule_versions(s, tenant=tenant.id))
        clusters = await Clusters.of(s, tenant.id, orders)
    done = 0
    for span in clusters.spans(CHUNK):
        async with db.write() as s:
            await _Chunk(s, tenant, versions, clusters, clock()).record(span, result)
        done += len(span)
        if progress:
            progress(done)
    return result


class _Chunk:
    """One transaction of the bulk path: reads, decisions, writes."""

    def __init__(self, s: AsyncSession, tenant: TenantSettings, versions: _Versions,
                 clusters: Clusters, now: datetime) -> None:
        self.s, self.tenant, self.versions, self.clusters = s, tenant, versions, clusters
        self.now = now
        self.orders: list[tuple[Any, ...]] = []
        self.entries: list[tuple[Any, ...]] = []
        self.new_touches: list[tuple[tuple[Any, ...], PaidOrder, repo.Link]] = []
        self.customers: set[str] = set()
        self.learned: list[tuple[PaidOrder, str]] = []

    async def record(self, span: range, result: BulkResult) -> None:
        s, tenant = self.s, self.tenant.id
        self.conn = conn = await repo.bulk_connection(s, tenant=tenant)
        self.now_key = conn.encode(self.now)
        chunk = self.clusters.orders(span)
        numbers = [o.order_no for o in chunk]
        known = await repo.known_orders(conn, tenant=tenant, order_nos=numbers)
        held = await repo.held_refund_orders(conn, tenant=tenant, order_nos=numbers)
        self.links = await repo.links_by_token(
            conn, tenant=tenant, tokens=sorted({o.tracking for o in chunk if o.tracking}))
        self.ids = iter(await repo.reserve_touch_ids(
            conn, count=sum(1 for o in chunk if o.tracking in self.links)))
        self.period = periods.open_period(self.now, self.tenant.tz,
                                          await ledger_repo.settled_periods(s, tenant=tenant))
        self.touches, self.bindings = await self._facts(chunk)
        recorded = []
        for order in chunk:
            if order.order_no not in known:
                known.add(order.order_no)
                self._one(order)
                recorded.append(order.order_no)
        await self._write()
        result.recorded += len(recorded)
        result.duplicate += len(chunk) - len(recorded)
        for order_no in (n for n in recorded if n in held):
            for refund in await orders_repo.refunds_of(s, tenant=tenant, order_no=order_no,
                                                       status="held"):
                await apply_refund(s, self.tenant, refund, self.now)
                result.refunds_applied.append(refund.refund_no)

    async def _facts(self, chunk: Sequence[PaidOrder]) -> tuple[
            _Touches, dict[str, list[attribution.BindingFact]]]:
        """The chunk's customers' touches and bindings, and its unionids'/openids' touches."""
        conn, tenant = self.conn, self.tenant.id
        customers = sorted(self.clusters.customers_of(chunk))
        unionids = sorted({o.customer.unionid for o in chunk if o.customer.unionid})
        openids = sorted({o.customer.openid for o in chunk if o.customer.openid})
        start = conn.encode(min(o.paid_at for o in chunk) - max(self.versions.windows))
        end = conn.encode(max(o.paid_at for o in chunk))
        rows: list[tuple[Any, ...]] = []
        bindings: dict[str, list[attribution.BindingFact]] = defaultdict(list)
        if customers:
            for b in await repo.bindings_of(conn, tenant=tenant, customers=customers):
                bindings[b[0]].append(attribution.BindingFact(b[1], b[2], b[3], b[4], b[5]))
            rows = await repo.customer_touches(conn, tenant=tenant, customers=customers,
                                               start=start, end=end)
        if unionids or openids:
            identified = await repo.identified_touches(
                conn, tenant=tenant, unionids=unionids, openids=openids, start=start, end=end)
            rows = list({r[2]: r for r in [*rows, *identified]}.values())  # full rows win
        return _Touches(rows), bindings

    def _one(self, order: PaidOrder) -> None:
        ref, versions, conn = order.customer, self.versions, self.conn
        customer = ref.external_userid or self.clusters.resolve(ref)
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
        tenant = self.tenant.id
        self.orders.append(recording.order_row(tenant, order, customer, decision,
                                               versions.ids[index], paid_at=paid_key,
                                               received_at=self.now_key))
        guide = decision.attribution.guide
        if guide:
            self.entries.append(ledger.entry_row(
                tenant, key=ledger.earn_key(order.order_no), kind="earn", guide=guide,
                amount_fen=decision.commission_fen, period=self.period,
                created_at=self.now_key, order_no=order.order_no))
        if customer:
            self.customers.add(customer)
            if ref.unionid or ref.openid:  # OrderService: remember_in after the insert
                self.clusters.learn(ref, customer)
                self.learned.append((order, customer))
                self.touches.claim(customer, ref.unionid, ref.openid)
        if link is not None:
            row = (paid_key, True, next(self.ids), link.guide, link.token, "order", customer,
                   ref.unionid, ref.openid)
            self.touches.add(row)
            self.new_touches.append((row, order, link))

    async def _write(self) -> None:
        conn, tenant = self.conn, self.tenant.id
        await repo.ensure_customers(conn, tenant=tenant, external_userids=sorted(self.customers),
                                    at=self.now)
        for order, customer in self.learned:  # before the new touches, which are claimed
            await remember_in(self.s, tenant, order.customer, customer, source="order")
        await repo.insert_orders(conn, rows=self.orders)
        await repo.insert_touches(conn, rows=[recording.tracking_touch_row(
            row[2], tenant, order, self.touches.external_userid(row), link, at=row[0])
            for row, order, link in self.new_touches])
        await repo.insert_entries(conn, rows=self.entries)
