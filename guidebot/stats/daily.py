"""The upkeep of the daily statistics: new follow events (by id), new orders (by arrival, each
counted once) and new ledger entries (by id) are added to their tenant × store × guide × day
cell. A periodic job runs it; `guidebot stats backfill` clears a tenant and runs it from the
start, so both give the same figures. The event pipeline is not touched."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.contacts import state_codec
from guidebot.db.engine import Database
from guidebot.db.models_commerce import LedgerEntry, Order
from guidebot.db.models_stats import StatsCustomer, StatsOrderMark
from guidebot.db.repo import stats as repo
from guidebot.stats import definitions as d

log = logging.getLogger(__name__)

BATCH = 2000
# Orders carry no serial id: read by arrival time, looking this far back for rows whose
# transaction committed late (each order is counted once, by its mark).
ORDER_LAG = timedelta(hours=1)

Cells = dict[tuple[str, str, str], dict[str, int]]


class _Batch:
    """Increments gathered in memory, written once per cell."""

    def __init__(self, zone: ZoneInfo, guide_stores: dict[str, str]) -> None:
        self.zone = zone
        self.guide_stores = guide_stores
        self.cells: Cells = defaultdict(lambda: defaultdict(int))
        self.customers: dict[str, StatsCustomer] = {}
        self.marks: dict[str, StatsOrderMark] = {}

    async def customer(self, s: AsyncSession, tenant: str, external_userid: str) -> StatsCustomer:
        found = self.customers.get(external_userid)
        if found is None:
            found = await repo.get_customer(s, tenant=tenant, external_userid=external_userid)
            self.customers[external_userid] = found
        return found

    def day(self, at: datetime) -> str:
        return at.astimezone(self.zone).date().isoformat()

    def add(self, at: datetime | str, store: str, guide: str, **counts: int) -> None:
        day = at if isinstance(at, str) else self.day(at)
        cell = self.cells[(day, store, guide)]
        for name, value in counts.items():
            cell[name] += value

    async def flush(self, s: AsyncSession, tenant: str) -> None:
        for (day, store, guide), counts in self.cells.items():
            await repo.add_daily(s, tenant=tenant, day=day, store_id=store, guide=guide,
                                 counts=dict(counts))
        self.cells.clear()


class DailyStats:
    def __init__(self, db: Database, zones: dict[str, ZoneInfo]) -> None:
        self._db = db
        self._zones = zones

    async def upkeep(self, tenant: str) -> int:
        """Count every source row not yet counted; returns how many rows were read."""
        total = 0
        while True:
            async with self._db.write() as s:
                await repo.lock_tenant(s, tenant=tenant)
                batch = _Batch(self._zones[tenant], await repo.guide_stores(s, tenant=tenant))
                read = await self._follows(s, tenant, batch)
                read += await self._orders(s, tenant, batch)
                read += await self._ledger(s, tenant, batch)
                await batch.flush(s, tenant)
            total += read
            if read == 0:
                return total

    async def backfill(self, tenant: str) -> int:
        async with self._db.write() as s:
            await repo.lock_tenant(s, tenant=tenant)
            await repo.clear(s, tenant=tenant)
        return await self.upkeep(tenant)

    async def _follows(self, s: AsyncSession, tenant: str, batch: _Batch) -> int:
        mark = await repo.get_watermark(s, tenant=tenant, source="follow_events")
        rows = await repo.follow_events_after(s, tenant=tenant, after_id=mark.last_id,
                                              limit=BATCH)
        codes = await repo.code_stores(s, tenant=tenant) if rows else {}
        for row in rows:
            store = batch.guide_stores.get(row.guide, "")
            customer = await batch.customer(s, tenant, row.external_userid)
            if row.action == d.ADDED:
                code_id = state_codec.decode(row.detail) if row.detail else None
                via_code = code_id is not None and code_id in codes
                if code_id is not None and codes.get(code_id):
                    store = codes[code_id]
                counts = {"adds_code" if via_code else "adds_other": 1}
                if customer.first_added_at is None:
                    customer.first_added_at, customer.via_code = row.at, via_code
                    counts["new_customers_code" if via_code else "new_customers_other"] = 1
                customer.following += 1
                batch.add(row.at, store, row.guide, **counts)
            elif row.action in d.ENDINGS:
                customer.following = max(customer.following - 1, 0)
                if row.action in d.DELETIONS:
                    batch.add(row.at, store, row.guide, deletions=1)
        if rows:
            mark.last_id = int(rows[-1].id or 0)
        return len(rows)

    async def _orders(self, s: AsyncSession, tenant: str, batch: _Batch) -> int:
        mark = await repo.get_watermark(s, tenant=tenant, source="orders")
        since = mark.last_at - ORDER_LAG if mark.last_at else None
        rows = await repo.orders_unmarked_since(s, tenant=tenant, since=since, limit=BATCH)
        for order in rows:
            await self._order(s, tenant, order, batch)
            if mark.last_at is None or order.received_at > mark.last_at:
                mark.last_at = order.received_at
        return len(rows)

    async def _order(self, s: AsyncSession, tenant: str, order: Order, batch: _Batch) -> None:
        store = order.credited_store or order.store_id or ""
        guide = order.guide or ""
        day = batch.day(order.paid_at)
        counts = {"orders_all": 1, "gmv_all_fen": order.amount_fen}
        new_customer = False
        if order.external_userid:
            customer = await batch.customer(s, tenant, order.external_userid)
            new_customer = customer.via_code
            counts.update(await self._purchase_kind(s, tenant, customer, order, batch))
            customer.orders += 1
            customer.gmv_fen += order.amount_fen
            if customer.last_paid_at is None or order.paid_at > customer.last_paid_at:
                customer.last_paid_at = order.paid_at
        if order.rule in d.GUIDE_RULES:
            counts.update(orders=1, gmv_fen=order.amount_fen)
            if new_customer:
                counts.update(orders_new=1, gmv_new_fen=order.amount_fen)
        batch.add(day, store, guide, **counts)
        mark = StatsOrderMark(tenant=tenant, order_no=order.order_no, day=day, store_id=store,
                              guide=guide)
        batch.marks[order.order_no] = mark
        await repo.add_mark(s, mark=mark)

    async def _purchase_kind(self, s: AsyncSession, tenant: str, customer: StatsCustomer,
                             order: Order, batch: _Batch) -> dict[str, int]:
        """First purchase = the customer's earliest order (paid_at, then order_no); an order
        that arrives late but was paid earlier takes the title from the one counted before."""
        first = (customer.first_paid_at, customer.first_order_no)
        if customer.first_order_no is not None and first <= (order.paid_at, order.order_no):
            return {"repurchases": 1}
        if customer.first_order_no is not None:
            old = (batch.marks.get(customer.first_order_no)
                   or await repo.get_mark(s, tenant=tenant, order_no=customer.first_order_no))
            if old is not None:
                batch.add(old.day, old.store_id, old.guide, first_purchases=-1, repurchases=1)
        customer.first_order_no, customer.first_paid_at = order.order_no, order.paid_at
        return {"first_purchases": 1}

    async def _ledger(self, s: AsyncSession, tenant: str, batch: _Batch) -> int:
        mark = await repo.get_watermark(s, tenant=tenant, source="ledger")
        rows: list[LedgerEntry] = list(await repo.ledger_after(
            s, tenant=tenant, after_id=mark.last_id, limit=BATCH))
        for entry in rows:
            batch.add(entry.created_at, batch.guide_stores.get(entry.guide, ""), entry.guide,
                      commission_fen=entry.amount_fen)
        if rows:
            mark.last_id = int(rows[-1].id or 0)
        return len(rows)
