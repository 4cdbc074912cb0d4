"""Queries for customer transfers (transfer_batches, customer_transfers): create a batch,
record what WeCom answered, read the open pairs and the console's lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Follow
from guidebot.db.models_transfers import CustomerTransfer, TransferBatch
from guidebot.db.types import UTCDateTime, utcnow
from guidebot.db.writes import Write

OPEN = ("queued", "waiting")  # a customer in one of these is being transferred
STATES = ("queued", "waiting", "done", "refused", "limit", "failed", "none")

_ROWS = CustomerTransfer.__table__  # type: ignore[attr-defined]
_STARTED = (update(_ROWS).where(_ROWS.c.batch_id == bindparam("b"),
                                _ROWS.c.external_userid == bindparam("c"),
                                _ROWS.c.state == "queued")
            .values(state=bindparam("state"), errcode=bindparam("errcode"),
                    takeover_at=bindparam("takeover_at"), updated_at=bindparam("now")))


class Pair(NamedTuple):
    kind: str
    handover: str
    takeover: str


class BatchSummary(NamedTuple):
    batch: TransferBatch
    counts: dict[str, int]  # customers per state


async def create_batch(session: AsyncSession, *, tenant: str, kind: str, handover: str,
                       takeover: str, message: str, customers: Sequence[str]) -> int:
    """A batch and its customers (queued); the batch's id."""
    batch = TransferBatch(tenant=tenant, kind=kind, handover=handover, takeover=takeover,
                          message=message)
    session.add(batch)
    await session.flush()
    assert batch.id is not None
    now = utcnow()
    await session.execute(insert(CustomerTransfer), [{
        "batch_id": batch.id, "tenant": tenant, "kind": kind, "handover": handover,
        "takeover": takeover, "external_userid": c, "state": "queued", "updated_at": now}
        for c in customers])
    return batch.id


def started(*, batch_id: int, external_userid: str, state: str, errcode: int | None,
            takeover_at: datetime | None) -> Write:
    """What WeCom answered for a queued customer (written with the outbox row's end)."""
    return Write(_STARTED, {"b": batch_id, "c": external_userid, "state": state,
                            "errcode": errcode, "takeover_at": takeover_at, "now": utcnow()})


async def in_transfer(session: AsyncSession, *, tenant: str,
                      external_userids: Sequence[str]) -> set[str]:
    """Those of these customers being transferred now (queued or waiting)."""
    found: set[str] = set()
    ids = sorted(set(external_userids))
    for start in range(0, len(ids), 500):
        stmt = select(CustomerTransfer.external_userid).where(
            CustomerTransfer.tenant == tenant,
            CustomerTransfer.external_userid.in_(ids[start:start + 500]),  # type: ignore[attr-defined]
            CustomerTransfer.state.in_(OPEN))  # type: ignore[attr-defined]
        found.update(str(c) for c in (await session.execute(stmt)).scalars())
    return found


async def following(session: AsyncSession, *, tenant: str, guide: str) -> list[str]:
    """The customers this guide follows now (active relations), by id."""
    stmt = (select(Follow.external_userid)
            .where(Follow.tenant == tenant, Follow.guide == guide, Follow.status == "active")
            .order_by(Follow.external_userid))  # type: ignore[arg-type]
    return [str(c) for c in (await session.execute(stmt)).scalars()]


async def following_among(session: AsyncSession, *, tenant: str, guide: str,
                          external_userids: Sequence[str]) -> set[str]:
    """Those of these customers this guide follows now."""
    found: set[str] = set()
    ids = sorted(set(external_userids))
    for start in range(0, len(ids), 500):
        stmt = select(Follow.external_userid).where(
            Follow.tenant == tenant, Follow.guide == guide, Follow.status == "active",
            Follow.external_userid.in_(ids[start:start + 500]))  # type: ignore[attr-defined]
        found.update(str(c) for c in (await session.execute(stmt)).scalars())
    return found


async def waiting_pairs(session: AsyncSession, *, tenant: str,
                        checked_before: datetime) -> list[Pair]:
    """The handover → takeover pairs with customers waiting, last asked about before
    `checked_before` (or never)."""
    stmt = (select(CustomerTransfer.kind, CustomerTransfer.handover, CustomerTransfer.takeover)
            .where(CustomerTransfer.tenant == tenant, CustomerTransfer.state == "waiting",
                   (CustomerTransfer.checked_at.is_(None))  # type: ignore[union-attr]
                   | (CustomerTransfer.checked_at < checked_before))  # type: ignore[operator]
            .distinct())
    return sorted(Pair(*row) for row in (await session.execute(stmt)).all())


async def settle(session: AsyncSession, *, tenant: str, pair: Pair,
                 results: dict[str, tuple[str, datetime | None]],
                 now: datetime) -> list[tuple[str, datetime]]:
    """Record WeCom's states (external_userid → (state, takeover_at)) for the pair's waiting
    customers, mark them all checked; the customers now done, with when."""
    stmt = select(CustomerTransfer.id, CustomerTransfer.external_userid).where(
        CustomerTransfer.tenant == tenant, CustomerTransfer.kind == pair.kind,
        CustomerTransfer.handover == pair.handover, CustomerTransfer.takeover == pair.takeover,
        CustomerTransfer.state == "waiting")
    done: list[tuple[str, datetime]] = []
    updates: list[dict[str, Any]] = []
    for row_id, customer in (await session.execute(stmt)).all():
        state, at = results.get(customer, ("waiting", None))
        updates.append({"i": row_id, "state": state, "at": at, "now": now})
        if state == "done":
            done.append((customer, at or now))
    if updates:
        await session.execute(
            update(_ROWS).where(_ROWS.c.id == bindparam("i")).values(
                state=bindparam("state"), checked_at=bindparam("now"), updated_at=bindparam("now"),
                takeover_at=func.coalesce(bindparam("at", type_=UTCDateTime()),
                                          _ROWS.c.takeover_at)),
            updates)
    return done


async def batches(session: AsyncSession, *, tenant: str, limit: int = 50,
                  before: int | None = None) -> list[BatchSummary]:
    """The newest batches (ids below `before`), each with its customers per state."""
    stmt = select(TransferBatch).where(TransferBatch.tenant == tenant)
    if before is not None:
        stmt = stmt.where(TransferBatch.id < before)  # type: ignore[operator]
    stmt = stmt.order_by(TransferBatch.id.desc()).limit(limit)  # type: ignore[union-attr]
    found = list((await session.execute(stmt)).scalars())
    counts: dict[int, dict[str, int]] = {b.id: {} for b in found if b.id is not None}
    if counts:
        rows = await session.execute(
            select(CustomerTransfer.batch_id, CustomerTransfer.state, func.count())
            .where(CustomerTransfer.batch_id.in_(sorted(counts)))  # type: ignore[attr-defined]
            .group_by(CustomerTransfer.batch_id, CustomerTransfer.state))
        for batch_id, state, n in rows.all():
            counts[batch_id][state] = int(n)
    return [BatchSummary(b, counts.get(b.id or 0, {})) for b in found]


async def batch(session: AsyncSession, *, tenant: str, batch_id: int) -> TransferBatch | None:
    found = await session.get(TransferBatch, batch_id)
    return found if found is not None and found.tenant == tenant else None


async def customers_of(session: AsyncSession, *, tenant: str,
                       batch_id: int) -> list[CustomerTransfer]:
    stmt = (select(CustomerTransfer)
            .where(CustomerTransfer.tenant == tenant, CustomerTransfer.batch_id == batch_id)
            .order_by(CustomerTransfer.external_userid))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())
