"""The upkeep of the daily statistics: new follow events and ledger entries (by id, every
tenant in one pass), and new orders (by arrival, each counted once) are added to their
tenant × store × guide × day cell, and the customers they change move between the layer
cells (stats/layers.py). Customer group changes (group_customer_changes: joins, leaves,
groups handed to another owner; by id, like follow events) are counted per owner in their
own cells (stats_group_daily), a customer once per owner however many of the owner's groups
they are in (stats_group_customers keeps in how many). A periodic job runs it;
`guidebot stats backfill` clears a tenant and counts its rows again, so both give the same
figures. The event pipeline is not touched.

Orders and ledger entries are counted set by set in SQL (guidebot/db/repo/stats.py): a batch
of orders is copied into `stats_batch_orders` by one statement, then a few statements count
it (first purchase or repurchase, the customers' facts and layer cells, the daily cells,
the marks). Follow events are still counted row by row here (they are few: one per add or
deletion).

Ids are read past a watermark. On PostgreSQL a transaction can commit after one that took a
later id, so ids skipped over are kept as gaps and looked up on every run until they appear
(or, after GAP_TTL, are taken as rolled back)."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.contacts import state_codec
from guidebot.db.engine import Database
from guidebot.db.models_groups import HANDED_IN, HANDED_OUT, JOIN, LEAVE
from guidebot.db.repo import stats as repo
from guidebot.stats import definitions as d
from guidebot.stats import layers

log = logging.getLogger(__name__)

BATCH = 2000  # follow events per transaction (counted in Python)
SET_BATCH = 20_000  # orders or ledger entries per transaction (counted in SQL)
RUNS_PER_STATEMENT = 50  # id runs (contiguous ids) in one ledger statement
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


class _Batch:
    """One tenant's increments gathered in memory, written once per cell."""

    def __init__(self, tenant: str, zone: ZoneInfo, guide_stores: dict[str, str],
                 codes: dict[int, str]) -> None:
        self.tenant, self.zone = tenant, zone
        self.guide_stores, self.codes = guide_stores, codes
        self.cells: Cells = defaultdict(lambda: defaultdict(int))
        self.customers: dict[str, Facts] = {}
        self.counted_in: dict[str, layers.Cells] = {}  # each customer's cells when loaded
        self.group_cells: Cells = defaultdict(lambda: defaultdict(int))
        self.in_groups: dict[tuple[str, str], int] = {}  # (owner, customer) → their groups

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

    async def load_groups(self, s: AsyncSession, keys: Iterable[tuple[str, str]]) -> None:
        """Read in how many of its owner's groups each (owner, customer) is (one query per
        owner among them)."""
        missing = {k for k in keys if k not in self.in_groups}
        if missing:
            found = await repo.get_group_customers(s, tenant=self.tenant, keys=missing)
            self.in_groups.update({k: found.get(k, 0) for k in missing})

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
        await repo.add_daily(s, tenant=self.tenant, group=True, cells=[
            (*cell, dict(counts)) for cell, counts in self.group_cells.items()])
        self.group_cells.clear()
        await repo.put_group_customers(s, tenant=self.tenant, counts=self.in_groups)
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
        """Count every source row not yet counted, for every tenant; returns rows read.
        Follow events are counted before orders (as the backfill does): orders wait while a
        full batch of follow events was read."""
        total = 0
        late_done = False
        while True:
            async with self._db.write() as s:
                await repo.lock_tenant(s, tenant=ALL)
                await repo.load_watermarks(s, tenant=ALL)
                run = _Run(s, self._zones)
                follows = await self._by_id(run, "follow_events", self._count)
                read = await self._by_id(run, "group_changes", self._count_groups)
                await run.flush()
                read += follows + await self._ledger(s)
                if follows < BATCH:
                    for tenant in self._zones:
                        if not late_done:
                            read += await self._orders(s, tenant, late=True)
                        read += await self._orders(s, tenant)
                    late_done = True
            total += read
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
            for source, count in (("follow_events", self._count),
                                  ("group_changes", self._count_groups)):
                mark = await repo.get_watermark(s, tenant=ALL, source=source)
                gaps = {int(k) for k in json.loads(mark.gaps or "{}")}
                after = 0
                while True:
                    run = _Run(s, self._zones)
                    rows = await repo.rows_after(s, source=source, after_id=after,
                                                 limit=BATCH, tenant=tenant, upto=mark.last_id)
                    await count(run, [r for r in rows if r.id not in gaps])
                    await run.flush()
                    total += len(rows)
                    if len(rows) < BATCH:
                        break
                    after = int(rows[-1].id)
            mark = await repo.get_watermark(s, tenant=ALL, source="ledger")
            gaps = {int(k) for k in json.loads(mark.gaps or "{}")}
            total += await self._count_ledger(s, _runs_between(mark.last_id, gaps),
                                              tenants=[tenant])
            while True:
                read = await self._orders(s, tenant)
                total += read
                if read == 0:
                    return total

    async def _by_id(self, run: _Run, source: str,
                     count: Callable[[_Run, Sequence[Any]], Awaitable[None]]) -> int:
        mark = await repo.get_watermark(run.s, tenant=ALL, source=source)
        gaps: dict[str, float] = json.loads(mark.gaps or "{}")
        late = (await repo.rows_with_ids(run.s, source=source, ids=[int(k) for k in gaps])
                if gaps else [])
        rows = await repo.rows_after(run.s, source=source, after_id=mark.last_id, limit=BATCH)
        _advance(mark, repo.runs_of([int(r.id) for r in rows]), [int(r.id) for r in late],
                 source)
        await count(run, [*late, *rows])
        return len(rows) + len(late)

    async def _ledger(self, s: AsyncSession) -> int:
        """The next ledger entries (by id, and those of earlier gaps that appeared), counted
        in SQL by the runs of ids read, so an entry committed meanwhile is not counted."""
        mark = await repo.get_watermark(s, tenant=ALL, source="ledger")
        gaps: dict[str, float] = json.loads(mark.gaps or "{}")
        late = (await repo.ids_present(s, source="ledger", ids=[int(k) for k in gaps])
                if gaps else [])
        runs = await repo.id_runs_after(s, source="ledger", after_id=mark.last_id,
                                        limit=SET_BATCH)
        _advance(mark, runs, late, "ledger")
        return await self._count_ledger(s, _merged(runs, late), tenants=list(self._zones))

    async def _count_ledger(self, s: AsyncSession, runs: list[tuple[int, int]], *,
                            tenants: list[str]) -> int:
        read = 0
        for i in range(0, len(runs), RUNS_PER_STATEMENT):
            part = runs[i:i + RUNS_PER_STATEMENT]
            found, lo, hi = await repo.ledger_span(s, runs=part)
            if not found:
                continue
            read += found
            for tenant in tenants:
                zone = self._zones[tenant]
                await repo.count_ledger(s, tenant=tenant, runs=part,
                                        offsets=offsets(zone, lo, hi))
        return read

    async def _count(self, run: _Run, rows: Sequence[Any]) -> None:
        """Follow events, row by row."""
        for tenant in {row.tenant for row in rows}:
            batch = await run.batch(tenant)
            if batch is not None:
                await batch.load(run.s, (r.external_userid for r in rows
                                         if r.tenant == tenant))
        for row in rows:
            batch = await run.batch(row.tenant)
            if batch is not None:
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
        elif row.action == d.TRANSFERRED_IN:
            customer.following += 1
        elif row.action in d.ENDINGS:
            customer.following = max(customer.following - 1, 0)
            if row.action in d.DELETIONS:
                batch.add(row.at, store, row.guide, deletions=1)

    async def _count_groups(self, run: _Run, rows: Sequence[Any]) -> None:
        """Group changes, row by row: a customer counts for an owner when they come into the
        first of the owner's groups (joined, or came with a group handed over) and when they
        leave the last (left, dismissed, or went with a group handed over)."""
        for tenant in {row.tenant for row in rows}:
            batch = await run.batch(tenant)
            if batch is not None:
                await batch.load_groups(run.s, ((r.owner, r.external_userid) for r in rows
                                                if r.tenant == tenant))
        for row in rows:
            batch = await run.batch(row.tenant)
            if batch is None:
                continue
            key = (row.owner, row.external_userid)
            before = batch.in_groups[key]
            comes = row.change in (JOIN, HANDED_IN)
            batch.in_groups[key] = before + 1 if comes else max(before - 1, 0)
            if (comes and before == 0) or (not comes and before == 1):
                cell = batch.group_cells[(batch.day(row.at),
                                          batch.guide_stores.get(row.owner, ""), row.owner)]
                cell[_GROUP_COUNT[row.change]] += 1

    async def _orders(self, s: AsyncSession, tenant: str, *, late: bool = False) -> int:
        """A batch of orders past the watermark, or (late) of those not counted in the
        ORDER_LAG before it, counted in SQL (repo.count_batch)."""
        mark = await repo.get_watermark(s, tenant=tenant, source="orders")
        if late and mark.last_at is None:
            return 0
        zone = self._zones[tenant]
        claimed = await repo.claim_orders(
            s, tenant=tenant, at=mark.last_at, key=mark.last_key, limit=SET_BATCH,
            guide_rules=d.GUIDE_RULES,
            offsets=offsets(zone, *await repo.paid_span(s, tenant=tenant)),
            since=mark.last_at - ORDER_LAG if late and mark.last_at else None)
        if not claimed:
            return 0
        if not late:
            mark.last_at, mark.last_key = await repo.batch_last(s, tenant=tenant)
        lo, hi = await repo.batch_span(s, tenant=tenant)
        await repo.count_batch(s, tenant=tenant, offsets=offsets(zone, lo, hi),
                               tiers=d.VALUE_TIERS, below=layers.NO_TIER)
        return claimed


def _advance(mark: Any, runs: list[tuple[int, int]], late: list[int], source: str) -> None:
    """Move an id watermark past the ids read (runs of contiguous ids, in order); ids skipped
    over become gaps, gaps that appeared (late) are closed, and gaps older than GAP_TTL_S are
    dropped."""
    gaps: dict[str, float] = json.loads(mark.gaps or "{}")
    now = time.time()
    expected = mark.last_id + 1
    for first, last in runs:
        gaps.update({str(k): now for k in range(expected, first)})
        expected = last + 1
    for i in late:
        gaps.pop(str(i), None)
    expired = [k for k, seen in gaps.items() if now - seen > GAP_TTL_S]
    for k in expired:
        del gaps[k]
    if expired:
        log.info("stats %s: %s ids never appeared (rolled back)", source, len(expired))
    kept = sorted(gaps.items(), key=lambda kv: -kv[1])[:MAX_GAPS]
    mark.gaps = json.dumps(dict(kept))
    if runs:
        mark.last_id = runs[-1][1]


def _merged(runs: list[tuple[int, int]], ids: list[int]) -> list[tuple[int, int]]:
    """Runs of contiguous ids and single ids not in them, as sorted runs."""
    out: list[tuple[int, int]] = []
    for first, last in sorted([*runs, *((i, i) for i in ids)]):
        if out and out[-1][1] == first - 1:
            out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def _runs_between(upto: int, gaps: set[int]) -> list[tuple[int, int]]:
    """The runs of ids 1..upto without the gaps."""
    out: list[tuple[int, int]] = []
    start = 1
    for gap in sorted(g for g in gaps if g <= upto):
        if gap > start:
            out.append((start, gap - 1))
        start = max(start, gap + 1)
    if start <= upto:
        out.append((start, upto))
    return out


def offsets(zone: ZoneInfo, lo: datetime | None,
            hi: datetime | None) -> list[tuple[datetime | None, int]]:
    """The zone's UTC offsets (seconds) from lo to hi: [(None, offset at lo), (change, new
    offset), …]. Changes are found day by day, then to the second (they fall on whole
    seconds); two changes within one day are not expected."""
    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    lo = lo or hi or datetime.now(UTC)
    hi = hi or lo
    out: list[tuple[datetime | None, int]] = [(None, offset(lo))]
    at = lo
    while at < hi:
        step = min(at + timedelta(days=1), hi)
        if offset(step) != offset(at):
            a, b = at, step
            while b - a > timedelta(seconds=1):
                mid = a + (b - a) / 2
                a, b = (mid, b) if offset(mid) == offset(a) else (a, mid)
            change = a.replace(microsecond=0) + timedelta(seconds=1)
            out.append((change, offset(change)))
        at = step
    return out


_GROUP_COUNT = {JOIN: "group_joins", LEAVE: "group_leaves", HANDED_IN: "group_handed_in",
                HANDED_OUT: "group_handed_out"}


def _new(via_code: bool) -> str:
    return "new_customers_code" if via_code else "new_customers_other"
