"""The upkeep of the daily statistics: new follow events and ledger entries (by id, every
tenant in one pass), and new orders (by arrival, each counted once) are added to their
tenant × store × guide × day cell, and the customers they change move between the layer
cells (stats/layers.py). A periodic job runs it; `guidebot stats backfill` clears
a tenant and counts its rows again, so both give the same figures. The event pipeline is
not touched.

Ids are read past a watermark. On PostgreSQL a transaction can commit after one that took a
later id, so ids skipped over are kept as gaps and looked up on every run until they appear
(or, after GAP_TTL, are taken as rolled back)."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.contacts import state_codec
from guidebot.db.engine import Database
from guidebot.db.repo import stats as repo
from guidebot.stats import definitions as d
from guidebot.stats import layers

log = logging.getLogger(__name__)

BATCH = 2000
ALL = "*"  # the watermark of id-ordered sources covers every tenant
GAP_TTL_S = 600.0  # an id still missing after this long was rolled back
MAX_GAPS = 10_000
# Orders carry no serial id: read by (arrival time, order_no) past a watermark; once per
# upkeep, orders that arrived this far before the watermark but were not counted (their
# transaction committed after later ones) are looked up too (each is counted once, by its
# mark). The same horizon as GAP_TTL_S.
ORDER_LAG = timedelta(seconds=GAP_TTL_S)

Cells = dict[tuple[str, str, str], dict[str, int]]


@dataclass(slots=True)
class Facts:
    """What the layers need of one customer (a stats_customers row), held as a plain object
    while a batch is counted and written back at its end."""

    external_userid: str
    first_added_at: datetime | None = None
    via_code: bool = False
    following: int = 0  # active follow relations
    orders: int = 0
    gmv_fen: int = 0
    first_order_no: str | None = None
    first_paid_at: datetime | None = None
    last_paid_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {"external_userid": self.external_userid,
                **{name: getattr(self, name) for name in repo.CUSTOMER_FACTS}}


class Mark(NamedTuple):
    """Where a counted order was counted (a later, earlier-paid order moves its title)."""

    day: str
    store_id: str
    guide: str


class _Batch:
    """One tenant's increments gathered in memory, written once per cell."""

    def __init__(self, tenant: str, zone: ZoneInfo, guide_stores: dict[str, str],
                 codes: dict[int, str]) -> None:
        self.tenant, self.zone = tenant, zone
        self.guide_stores, self.codes = guide_stores, codes
        self.cells: Cells = defaultdict(lambda: defaultdict(int))
        self.customers: dict[str, Facts] = {}
        self.counted_in: dict[str, layers.Cells] = {}  # each customer's cells when loaded
        self.marks: dict[str, Mark] = {}  # order_no → the cell it was counted in
        self.new_marks: list[tuple[str, str, str, str]] = []

    async def load(self, s: AsyncSession, external_userids: Iterable[str]) -> None:
        """Read the facts of these customers at once (one query, not one per customer)."""
        missing = [e for e in external_userids if e not in self.customers]
        if not missing:
            return
        found = await repo.get_customers(s, tenant=self.tenant, external_userids=missing)
        for external_userid in missing:
            row = found.get(external_userid)
            customer = (Facts(external_userid, **{n: getattr(row, n) for n in repo.CUSTOMER_FACTS})
                        if row is not None else Facts(external_userid))
            self.customers[external_userid] = customer
            self.counted_in[external_userid] = layers.cells(customer, self.zone)

    async def customer(self, s: AsyncSession, external_userid: str) -> Facts:
        await self.load(s, (external_userid,))
        return self.customers[external_userid]

    def day(self, at: datetime) -> str:
        return at.astimezone(self.zone).date().isoformat()

    def add(self, at: datetime | str, store: str, guide: str, **counts: int) -> None:
        day = at if isinstance(at, str) else self.day(at)
        cell = self.cells[(day, store, guide)]
        for name, value in counts.items():
            cell[name] += value

    async def flush(self, s: AsyncSession) -> None:
        await repo.add_daily(s, tenant=self.tenant, cells=[
            (*cell, dict(counts)) for cell, counts in self.cells.items()])
        self.cells.clear()
        await repo.add_marks(s, tenant=self.tenant, marks=self.new_marks)
        self.new_marks.clear()
        moves = layers.Moves()
        for external_userid, customer in self.customers.items():
            now_in = layers.cells(customer, self.zone)
            moves.move(self.counted_in[external_userid], now_in)
            self.counted_in[external_userid] = now_in
        await repo.put_customers(s, tenant=self.tenant,
                                 facts=[c.row() for c in self.customers.values()])
        await repo.add_layers(s, tenant=self.tenant, adds=moves.adds, buyers=moves.buyers)


class _Run:
    """The batches of one transaction, made on first use per tenant."""

    def __init__(self, s: AsyncSession, zones: dict[str, ZoneInfo]) -> None:
        self.s, self.zones = s, zones
        self.batches: dict[str, _Batch] = {}

    async def batch(self, tenant: str) -> _Batch | None:
        if tenant not in self.zones:
            return None  # a tenant no longer configured: its rows are passed over
        if tenant not in self.batches:
            self.batches[tenant] = _Batch(tenant, self.zones[tenant],
                                          await repo.guide_stores(self.s, tenant=tenant),
                                          await repo.code_stores(self.s, tenant=tenant))
        return self.batches[tenant]

    async def flush(self) -> None:
        for batch in self.batches.values():
            await batch.flush(self.s)


class DailyStats:
    def __init__(self, db: Database, zones: dict[str, ZoneInfo]) -> None:
        self._db = db
        self._zones = zones

    async def upkeep(self) -> int:
        """Count every source row not yet counted, for every tenant; returns rows read."""
        total = 0
        first = True
        while True:
            async with self._db.write() as s:
                await repo.lock_tenant(s, tenant=ALL)
                run = _Run(s, self._zones)
                read = 0
                for source in repo.SOURCES:
                    read += await self._by_id(run, source)
                for tenant in self._zones:
                    if first:
                        read += await self._orders(run, tenant, late=True)
                    read += await self._orders(run, tenant)
                await run.flush()
            total += read
            first = False
            if read == 0:
                return total

    async def backfill(self, tenant: str) -> int:
        """Clear one tenant's statistics and count its rows again, up to where the upkeep
        has read (later rows and gaps are the upkeep's to count)."""
        await self.upkeep()
        async with self._db.write() as s:
            await repo.lock_tenant(s, tenant=ALL)
            await repo.clear(s, tenant=tenant)
            total = 0
            for source in repo.SOURCES:
                mark = await repo.get_watermark(s, tenant=ALL, source=source)
                gaps = {int(k) for k in json.loads(mark.gaps or "{}")}
                after = 0
                while True:
                    run = _Run(s, self._zones)
                    rows = await repo.rows_after(s, source=source, after_id=after, limit=BATCH,
                                                 tenant=tenant, upto=mark.last_id)
                    await self._count(run, source, [r for r in rows if r.id not in gaps])
                    await run.flush()
                    total += len(rows)
                    if len(rows) < BATCH:
                        break
                    after = int(rows[-1].id)
            while True:
                run = _Run(s, self._zones)
                read = await self._orders(run, tenant)
                await run.flush()
                total += read
                if read == 0:
                    return total

    async def _by_id(self, run: _Run, source: str) -> int:
        mark = await repo.get_watermark(run.s, tenant=ALL, source=source)
        gaps: dict[str, float] = json.loads(mark.gaps or "{}")
        late = (await repo.rows_with_ids(run.s, source=source, ids=[int(k) for k in gaps])
                if gaps else [])
        rows = await repo.rows_after(run.s, source=source, after_id=mark.last_id, limit=BATCH)
        now = time.time()
        expected = mark.last_id + 1
        for row in rows:
            gaps.update({str(i): now for i in range(expected, int(row.id))})
            expected = int(row.id) + 1
        for row in late:
            gaps.pop(str(row.id), None)
        expired = [k for k, seen in gaps.items() if now - seen > GAP_TTL_S]
        for k in expired:
            del gaps[k]
        if expired:
            log.info("stats %s: %s ids never appeared (rolled back)", source, len(expired))
        kept = sorted(gaps.items(), key=lambda kv: -kv[1])[:MAX_GAPS]
        mark.gaps = json.dumps(dict(kept))
        if rows:
            mark.last_id = int(rows[-1].id)
        await self._count(run, source, [*late, *rows])
        return len(rows) + len(late)

    async def _count(self, run: _Run, source: str, rows: Sequence[Any]) -> None:
        if source != "ledger":
            for tenant in {row.tenant for row in rows}:
                batch = await run.batch(tenant)
                if batch is not None:
                    await batch.load(run.s, (r.external_userid for r in rows
                                             if r.tenant == tenant))
        for row in rows:
            batch = await run.batch(row.tenant)
            if batch is None:
                continue
            if source == "ledger":
                batch.add(row.created_at, batch.guide_stores.get(row.guide, ""), row.guide,
                          commission_fen=row.amount_fen)
            else:
                await self._follow(run.s, batch, row)

    async def _follow(self, s: AsyncSession, batch: _Batch, row: Any) -> None:
        store = batch.guide_stores.get(row.guide, "")
        customer = await batch.customer(s, row.external_userid)
        if row.action == d.ADDED:
            code_id = state_codec.decode(row.detail) if row.detail else None
            via_code = code_id is not None and code_id in batch.codes
            if code_id is not None and batch.codes.get(code_id):
                store = batch.codes[code_id]
            counts = {"adds_code" if via_code else "adds_other": 1}
            if customer.first_added_at is None:  # the customer's first add counted
                customer.first_added_at, customer.via_code = row.at, via_code
                counts[_new(via_code)] = 1
            customer.following += 1
            batch.add(row.at, store, row.guide, **counts)
        elif row.action in d.ENDINGS:
            customer.following = max(customer.following - 1, 0)
            if row.action in d.DELETIONS:
                batch.add(row.at, store, row.guide, deletions=1)

    async def _orders(self, run: _Run, tenant: str, *, late: bool = False) -> int:
        """A batch of orders past the watermark, or (late) of those not counted in the
        ORDER_LAG before it."""
        batch = await run.batch(tenant)
        assert batch is not None
        mark = await repo.get_watermark(run.s, tenant=tenant, source="orders")
        if late:
            if mark.last_at is None:
                return 0
            rows = await repo.orders_unmarked_between(
                run.s, tenant=tenant, since=mark.last_at - ORDER_LAG, until=mark.last_at,
                limit=BATCH)
        else:
            rows = await repo.orders_after(run.s, tenant=tenant, at=mark.last_at,
                                           key=mark.last_key, limit=BATCH)
        await batch.load(run.s, (o.external_userid for o in rows if o.external_userid))
        firsts = {c.first_order_no for c in batch.customers.values()
                  if c.first_order_no and c.first_order_no not in batch.marks}
        if firsts:  # a late order paid earlier moves the first purchase: its mark is needed
            found = await repo.get_marks(run.s, tenant=tenant, order_nos=sorted(firsts))
            batch.marks.update({no: Mark(m.day, m.store_id, m.guide) for no, m in found.items()})
        for order in rows:
            await self._order(run.s, order, batch)
        if rows and not late:
            mark.last_at, mark.last_key = rows[-1].received_at, rows[-1].order_no
        return len(rows)

    async def _order(self, s: AsyncSession, order: Any, batch: _Batch) -> None:
        """One commerce_orders row (read as a plain row, not an ORM object)."""
        store = order.credited_store or order.store_id or ""
        guide = order.guide or ""
        day = batch.day(order.paid_at)
        counts = {"orders_all": 1, "gmv_all_fen": order.amount_fen}
        new_customer = False
        if order.external_userid:
            customer = await batch.customer(s, order.external_userid)
            new_customer = customer.via_code
            counts.update(await self._purchase_kind(s, customer, order, batch))
            customer.orders += 1
            customer.gmv_fen += order.amount_fen
            if customer.last_paid_at is None or order.paid_at > customer.last_paid_at:
                customer.last_paid_at = order.paid_at
        if order.rule in d.GUIDE_RULES:
            counts.update(orders=1, gmv_fen=order.amount_fen)
            if new_customer:
                counts.update(orders_new=1, gmv_new_fen=order.amount_fen)
        batch.add(day, store, guide, **counts)
        batch.marks[order.order_no] = Mark(day, store, guide)
        batch.new_marks.append((order.order_no, day, store, guide))

    async def _purchase_kind(self, s: AsyncSession, customer: Facts, order: Any,
                             batch: _Batch) -> dict[str, int]:
        """First purchase = the customer's earliest order (paid_at, then order_no); an order
        that arrives late but was paid earlier takes the title from the one counted before."""
        if customer.first_order_no is not None and customer.first_paid_at is not None and (
                customer.first_paid_at, customer.first_order_no) <= (order.paid_at,
                                                                     order.order_no):
            return {"repurchases": 1}
        if customer.first_order_no is not None:
            old = (batch.marks.get(customer.first_order_no)
                   or await repo.get_mark(s, tenant=batch.tenant,
                                          order_no=customer.first_order_no))
            if old is not None:
                batch.add(old.day, old.store_id, old.guide, first_purchases=-1, repurchases=1)
        customer.first_order_no, customer.first_paid_at = order.order_no, order.paid_at
        return {"first_purchases": 1}


def _new(via_code: bool) -> str:
    return "new_customers_code" if via_code else "new_customers_other"
