"""Bulk attribution for backfills: the per-order path's decisions with set-based I/O.

The result equals recording the orders one by one with OrderService.paid in paid_at order
(resolve_remote=False; no events are published). Orders interact only through a shared
customer, unionid or openid (guidebot.commerce.clusters), so each cluster of linked orders is
taken whole, in paid_at order. A chunk of clusters is one transaction; its pieces are read and
decided by guidebot.commerce.bulk_decide — in this process, or for large runs in a worker
process (guidebot.commerce.bulk_worker) while this one writes the previous piece — and their
orders, tracking touches, earn entries and customers go in through the driver; held refunds of
the chunk's orders are applied last, as the per-order path applies them.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot import lanes
from guidebot.commerce import periods
from guidebot.commerce.bulk_decide import Piece, Terms, Versions, decide_piece, touch_ids
from guidebot.commerce.bulk_worker import BulkWorker
from guidebot.commerce.clusters import Clusters
from guidebot.commerce.identity import remember_in
from guidebot.commerce.orders import Outcome, apply_refund, ensure_rules
from guidebot.commerce.schema import CustomerRef, PaidOrder
from guidebot.db.engine import Database
from guidebot.db.repo import commerce_bulk as repo
from guidebot.db.repo import commerce_driver as driver
from guidebot.db.repo import commerce_ledger as ledger_repo
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.errors import ValidationFailed
from guidebot.settings import TenantSettings

AHEAD = 2  # pieces sent to each worker before their answers are awaited


@dataclass(frozen=True)
class Sizes:
    chunk: int = 50_000  # orders per transaction (one to two seconds of the write lock)
    piece: int = 5_000  # orders a worker decides while the previous piece is written
    first_piece: int = 1_000  # a chunk's first piece: small, this process waits for it
    worker_from: int = 20_000  # orders from which a run decides in workers by default
    workers: int = 2  # decision workers: with the writing process, enough for two cores


@dataclass
class BulkResult:
    recorded: int = 0
    duplicate: int = 0
    refunds_applied: list[str] = field(default_factory=list)
    refund_outcomes: list[Outcome] = field(default_factory=list)  # of refunds_applied


async def record_many(db: Database, tenant: TenantSettings, orders: Sequence[PaidOrder],
                      clock: Callable[[], datetime],
                      progress: Callable[[int], None] | None = None, *,
                      worker: bool | None = None, sizes: Sizes = Sizes()) -> BulkResult:
    """Attribute and ledger paid orders; identities are resolved from stored mappings.

    `worker`: decide in a worker process (True), in this process (False), or by size (None:
    from sizes.worker_from orders, when there are two CPUs and another process can open the
    database). The result is the same either way, and for any `sizes`."""
    address = repo.reader_address(db.url)
    if worker and address is None:
        raise ValidationFailed("a bulk worker cannot reach an in-memory SQLite database")
    if worker is None:
        worker = address is not None and len(orders) >= sizes.worker_from and _cpus() > 1
    collecting = gc.isenabled()
    gc.disable()  # millions of acyclic tuples: the cycle collector would rescan them again
    try:  # and again (refcounting frees them all the same)
        if not worker or address is None:
            return await _record_many(db, tenant, orders, clock, progress, sizes, [])
        processes: list[BulkWorker] = []
        try:
            for _ in range(max(sizes.workers, 1)):  # they start while this process reads
                processes.append(await BulkWorker.spawn(address))
            result = await _record_many(db, tenant, orders, clock, progress, sizes, processes)
        except BaseException:
            for process in processes:
                await process.kill()
            raise
        for process in processes:
            await process.stop()
        return result
    finally:
        if collecting:
            gc.enable()


def _cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


async def _record_many(db: Database, tenant: TenantSettings, orders: Sequence[PaidOrder],
                       clock: Callable[[], datetime], progress: Callable[[int], None] | None,
                       sizes: Sizes, workers: list[BulkWorker]) -> BulkResult:
    with lanes.background():  # long transactions on the raw driver connection
        return await _record_many_now(db, tenant, orders, clock, progress, sizes, workers)


async def _record_many_now(db: Database, tenant: TenantSettings, orders: Sequence[PaidOrder],
                           clock: Callable[[], datetime],
                           progress: Callable[[int], None] | None, sizes: Sizes,
                           workers: list[BulkWorker]) -> BulkResult:
    result = BulkResult()
    async with db.write() as s:
        await ensure_rules(s, tenant, clock())
        versions = Versions([(v.effective_at, v.rules, int(v.id or 0))
                             for v in await repo.rule_versions(s, tenant=tenant.id)])
        clusters = await Clusters.of(s, tenant.id, orders)
    for worker in workers:
        worker.run(versions, clusters.identities)
    done = 0
    for span in clusters.spans(sizes.chunk):
        async with db.write() as s:
            chunk = _Chunk(s, tenant, clock())
            await chunk.begin(clusters.orders(span))
            if not workers:
                await chunk.write(await decide_piece(
                    chunk.conn, chunk.terms, versions, clusters.identities,
                    clusters.orders(span), touch_ids(chunk.conn, chunk.first_touch_id)))
            else:
                await _through(workers, chunk, clusters, span, sizes)
            await chunk.finish(result)
        done += len(span)
        if progress:
            progress(done)
    return result


async def record_in(s: AsyncSession, tenant: TenantSettings, orders: Sequence[PaidOrder],
                    now: datetime) -> tuple[Piece, BulkResult]:
    """The in-process bulk path as one chunk inside the caller's transaction (the webhook
    intake's batches): the decided piece (its order rows say who got what) and the result,
    with the outcomes of the held refunds it applied."""
    await ensure_rules(s, tenant, now)
    versions = Versions([(v.effective_at, v.rules, int(v.id or 0))
                         for v in await repo.rule_versions(s, tenant=tenant.id)])
    clusters = await Clusters.of(s, tenant.id, orders)
    ordered = clusters.orders(range(len(clusters.ordered)))
    chunk = _Chunk(s, tenant, now)
    await chunk.begin(ordered)
    piece = await decide_piece(chunk.conn, chunk.terms, versions, clusters.identities, ordered,
                               touch_ids(chunk.conn, chunk.first_touch_id))
    await chunk.write(piece)
    result = BulkResult()
    await chunk.finish(result)
    return piece, result


async def _through(workers: list[BulkWorker], chunk: _Chunk, clusters: Clusters, span: range,
                   sizes: Sizes) -> None:
    """The chunk's pieces decided by the workers in turn, each written while they decide the
    next ones. On SQLite a piece numbers its tracking touches from the chunk's first free id
    plus its position in the chunk (an order makes at most one), so no two pieces share an id
    and a cluster's touches are numbered in its order, as one counter would number them."""
    for worker in workers:
        worker.chunk(chunk.terms)
    first = next(clusters.spans(sizes.first_piece, within=span))
    pieces = [first, *clusters.spans(sizes.piece, within=range(first.stop, span.stop))]
    ahead = AHEAD * len(workers)

    def send(n: int) -> None:
        piece = pieces[n]
        start = chunk.first_touch_id
        workers[n % len(workers)].piece(
            clusters.orders(piece), None if start is None else start + piece.start - span.start)

    for n in range(min(ahead, len(pieces))):
        send(n)
    for n in range(len(pieces)):
        decided = await workers[n % len(workers)].result()
        if n + ahead < len(pieces):
            send(n + ahead)
        await chunk.write(decided)


class _Chunk:
    """One transaction of the bulk path: what it fixes for its pieces, and their writes."""

    def __init__(self, s: AsyncSession, tenant: TenantSettings, now: datetime) -> None:
        self.s, self.tenant, self.now = s, tenant, now
        self.recorded: list[str] = []  # order numbers, when a refund is held for any
        self.count = self.duplicate = 0

    async def begin(self, orders: Sequence[PaidOrder]) -> None:
        s, tenant = self.s, self.tenant.id
        self.conn = conn = await repo.bulk_connection(s, tenant=tenant)
        period = periods.open_period(self.now, self.tenant.tz,
                                     await ledger_repo.settled_periods(s, tenant=tenant))
        self.terms = Terms(tenant, conn.encode(self.now), period)
        self.held = await driver.held_refund_orders(conn, tenant=tenant,
                                                    order_nos=[o.order_no for o in orders])
        self.first_touch_id = None if conn.postgres else await driver.highest_touch_id(conn) + 1

    async def write(self, piece: Piece) -> None:
        conn, tenant = self.conn, self.tenant.id
        await driver.ensure_customers(conn, tenant=tenant, external_userids=piece.customers,
                                      at=self.now)
        for unionid, openid, customer in piece.learned:  # before the new touches: claimed
            await remember_in(self.s, tenant, CustomerRef(None, unionid, openid), customer,
                              source="order")
        await driver.insert_orders(conn, rows=piece.orders)
        await driver.insert_touches(conn, rows=piece.touches)
        await driver.insert_entries(conn, rows=piece.entries)
        if self.held:
            self.recorded += [row[1] for row in piece.orders]
        self.count += len(piece.orders)
        self.duplicate += piece.duplicate

    async def finish(self, result: BulkResult) -> None:
        """Apply the held refunds of the chunk's new orders, in order."""
        result.recorded += self.count
        result.duplicate += self.duplicate
        for order_no in (n for n in self.recorded if n in self.held):
            for refund in await orders_repo.refunds_of(self.s, tenant=self.tenant.id,
                                                       order_no=order_no, status="held"):
                outcome = await apply_refund(self.s, self.tenant, refund, self.now)
                result.refunds_applied.append(refund.refund_no)
                result.refund_outcomes.append(outcome)
