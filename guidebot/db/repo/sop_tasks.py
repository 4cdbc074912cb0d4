"""SOP task queries: guide tasks, reminders and moments; scan cursors; singleton locks and
turns (locks waited for)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
import zlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from guidebot.db.models import CorpTag, CustomerTag, FollowEvent, OutboxItem
from guidebot.db.models_sop import SopCursor, SopDropFiring, SopEnrollment, SopStep, SopTask
from guidebot.db.repo._dialect import insert_for
from guidebot.db.types import UTCDateTime, utcnow
from guidebot.db.writes import ByDialect, Write

APP_MESSAGE_KINDS = ("reminder", "notify")
STOPPED = "stopped by HQ"  # the last_error of a task whose 群发 HQ stopped
OPEN = ("queued", "sending", "sent")  # statuses a stop acts on


async def insert_task(session: AsyncSession, now: datetime | None = None,
                      **values: Any) -> int | None:
    """The new task's id, or None when its key exists."""
    now = now or utcnow()
    stmt = (insert_for(session, SopTask).values(created_at=now, updated_at=now, **values)
            .on_conflict_do_nothing(index_elements=["tenant", "key"]).returning(SopTask.id))
    return (await session.execute(stmt)).scalar_one_or_none()


async def claim_tasks(session: AsyncSession, *, tenant: str, status: str, limit: int,
                      older_than: datetime | None = None,
                      now: datetime | None = None) -> list[Any]:
    """(id, kind, guide) of tasks in `status` (optionally untouched since `older_than`),
    locked and marked sending; `calling_at` records from when a WeCom call may have happened
    (see reconcile)."""
    now = now or utcnow()
    pick = select(SopTask.id).where(SopTask.tenant == tenant, SopTask.status == status)
    if older_than is not None:
        pick = pick.where(SopTask.updated_at < older_than)  # type: ignore[operator]
    pick = pick.order_by(SopTask.id).limit(limit).with_for_update(skip_locked=True)  # type: ignore[arg-type]
    stmt = (update(SopTask).where(SopTask.id.in_(pick.scalar_subquery()))  # type: ignore[union-attr]
            .values(status="sending", updated_at=now, calling_at=now)
            .returning(SopTask.id, SopTask.kind, SopTask.guide)
            .execution_options(synchronize_session=False))
    return sorted((await session.execute(stmt)).all())


async def any_to_claim(session: AsyncSession, *, tenant: str, stale_before: datetime) -> bool:
    """Whether `claim_tasks` would find a queued task, or a sending one untouched since
    `stale_before` (a read that needs no writer)."""
    stmt = select(SopTask.id).where(
        SopTask.tenant == tenant,
        or_(SopTask.status == "queued",
            and_(SopTask.status == "sending",
                 SopTask.updated_at < stale_before))).limit(1)  # type: ignore[operator]
    return (await session.execute(stmt)).first() is not None


async def get_task(session: AsyncSession, *, task_id: int) -> SopTask | None:
    return await session.get(SopTask, task_id)


async def update_task(session: AsyncSession, *, task_id: int, now: datetime | None = None,
                      **values: Any) -> None:
    await session.execute(update(SopTask).where(SopTask.id == task_id).values(
        updated_at=now or utcnow(), **values))


async def due_checks(session: AsyncSession, *, tenant: str, now: datetime,
                     limit: int) -> list[SopTask]:
    stmt = (select(SopTask).where(
        SopTask.tenant == tenant, SopTask.status == "sent",
        SopTask.kind.in_(("guide_task", "group_task")),  # type: ignore[attr-defined]
        SopTask.next_check_at <= now)  # type: ignore[operator]
        .order_by(SopTask.next_check_at).limit(limit)  # type: ignore[arg-type]
        .with_for_update(skip_locked=True))
    return list((await session.execute(stmt)).scalars())


async def sent_mass_tasks(session: AsyncSession, *, tenant: str,
                          ids: Sequence[int]) -> list[SopTask]:
    """Of these tasks, the 群发 tasks WeCom holds (sent, not yet confirmed), locked."""
    stmt = (select(SopTask).where(
        SopTask.tenant == tenant, SopTask.status == "sent",
        SopTask.kind.in_(("guide_task", "group_task")),  # type: ignore[attr-defined]
        SopTask.id.in_(list(ids)))  # type: ignore[union-attr]
        .order_by(SopTask.id).with_for_update(skip_locked=True))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def requeue_tasks(session: AsyncSession, *, ids: Sequence[int], now: datetime) -> None:
    if ids:
        await session.execute(update(SopTask).where(SopTask.id.in_(list(ids))).values(  # type: ignore[union-attr]
            status="queued", updated_at=now))


async def list_tasks(session: AsyncSession, *, tenant: str, guide: str | None,
                     status: str | None, limit: int = 200,
                     before_id: int | None = None) -> list[tuple[SopTask, Any]]:
    """Tasks with their outbox row (for attempts, dead-letter state and the last error),
    newest first, those with an id below `before_id` when given (the page after it): read
    along the primary key, or ix_sop_tasks_guide (tenant, guide, id) for one guide."""
    stmt = (select(SopTask, OutboxItem).outerjoin(
        OutboxItem, (OutboxItem.tenant == SopTask.tenant)
        & (OutboxItem.key == literal("sop-task:") + cast(SopTask.id, String)))
        .where(SopTask.tenant == tenant))
    if guide:
        stmt = stmt.where(SopTask.guide == guide)
    if status:
        stmt = stmt.where((SopTask.status == status) | (OutboxItem.status == status))
    if before_id is not None:
        stmt = stmt.where(SopTask.id < before_id)  # type: ignore[operator]
    stmt = stmt.order_by(SopTask.id.desc()).limit(limit)  # type: ignore[union-attr]
    return [(t, o) for t, o in (await session.execute(stmt)).all()]


async def guide_day_tasks(session: AsyncSession, *, tenant: str, guide: str,
                          open_statuses: Sequence[str], start: datetime, end: datetime,
                          limit: int) -> tuple[int, list[SopTask]]:
    """A guide's tasks still open (`open_statuses`) or created in [start, end): how many
    (counted, exactly) and the newest `limit` of them."""
    where = and_(SopTask.tenant == tenant, SopTask.guide == guide,
                 or_(SopTask.status.in_(list(open_statuses)),  # type: ignore[attr-defined]
                     and_(SopTask.created_at >= start,  # type: ignore[operator]
                          SopTask.created_at < end)))  # type: ignore[operator]
    count = (await session.execute(select(func.count()).select_from(SopTask)
                                   .where(where))).scalar_one()
    rows = await session.execute(select(SopTask).where(where)
                                 .order_by(SopTask.id.desc()).limit(limit))  # type: ignore[union-attr]
    return int(count), list(rows.scalars())


async def waiting_mass_tasks(session: AsyncSession, *, tenant: str, kinds: Sequence[str],
                             status: str) -> dict[str, tuple[int, int]]:
    """guide → (how many tasks of `kinds` in `status` and not stopped, from how many sources)."""
    stmt = (select(SopTask.guide, func.count(), func.count(func.distinct(SopTask.source)))
            .where(SopTask.tenant == tenant, SopTask.kind.in_(list(kinds)),  # type: ignore[attr-defined]
                   SopTask.status == status, SopTask.stopped_at.is_(None))  # type: ignore[union-attr]
            .group_by(SopTask.guide))
    return {g: (int(n), int(sources)) for g, n, sources in (await session.execute(stmt)).all()}


async def first_waiting_sources(session: AsyncSession, *, tenant: str, guide: str,
                                kinds: Sequence[str], status: str, limit: int) -> list[str]:
    """The sources of a guide's waiting tasks (as waiting_mass_tasks counts them), by their
    oldest task, at most `limit`."""
    first = func.min(SopTask.id)
    stmt = (select(SopTask.source)
            .where(SopTask.tenant == tenant, SopTask.guide == guide,
                   SopTask.kind.in_(list(kinds)),  # type: ignore[attr-defined]
                   SopTask.status == status, SopTask.stopped_at.is_(None))  # type: ignore[union-attr]
            .group_by(SopTask.source).order_by(first).limit(limit))
    return list((await session.execute(stmt)).scalars())


async def reminders_made(session: AsyncSession, *, tenant: str, kind: str,
                         not_statuses: Sequence[str], start: datetime,
                         end: datetime) -> dict[str, tuple[int, int]]:
    """guide → (how many tasks of `kind` created in [start, end] and not in `not_statuses`,
    their recipients added up)."""
    stmt = (select(SopTask.guide, func.count(), func.coalesce(func.sum(SopTask.recipients), 0))
            .where(SopTask.tenant == tenant, SopTask.kind == kind,
                   SopTask.status.not_in(list(not_statuses)),  # type: ignore[attr-defined]
                   SopTask.created_at >= start,  # type: ignore[operator]
                   SopTask.created_at <= end)  # type: ignore[operator]
            .group_by(SopTask.guide))
    return {g: (int(n), int(r)) for g, n, r in (await session.execute(stmt)).all()}


async def outbox_keys(session: AsyncSession, *, tenant: str, keys: Sequence[str]) -> set[str]:
    """Which of these keys have an outbox row."""
    stmt = select(OutboxItem.key).where(OutboxItem.tenant == tenant,
                                        OutboxItem.key.in_(list(keys)))  # type: ignore[attr-defined]
    return set((await session.execute(stmt)).scalars())


async def get_cursor(session: AsyncSession, *, tenant: str, name: str) -> str:
    row = await session.get(SopCursor, (tenant, name))
    return row.value if row else ""


async def set_cursor(session: AsyncSession, *, tenant: str, name: str, value: str) -> None:
    values = {"value": value, "updated_at": utcnow()}
    stmt = insert_for(session, SopCursor).values(tenant=tenant, name=name, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["tenant", "name"],
                                                     set_=values))


async def tags_added_since(session: AsyncSession, *, tenant: str,
                           since: datetime) -> list[tuple[str, str, str, datetime]]:
    """(customer, guide, tag name, added_at) for tags marked since `since`."""
    stmt = (select(CustomerTag.external_userid, CustomerTag.guide, CorpTag.name,
                   CustomerTag.added_at)
            .join(CorpTag, (CorpTag.tenant == CustomerTag.tenant)
                  & (CorpTag.tag_id == CustomerTag.tag_id))
            .where(CustomerTag.tenant == tenant, CustomerTag.added_at > since)  # type: ignore[operator]
            .order_by(CustomerTag.added_at))  # type: ignore[arg-type]
    return [tuple(r) for r in (await session.execute(stmt)).all()]  # type: ignore[misc]


async def deletions_after(session: AsyncSession, *, tenant: str, after_id: int,
                          limit: int = 1000) -> list[FollowEvent]:
    stmt = (select(FollowEvent).where(
        FollowEvent.tenant == tenant, FollowEvent.id > after_id,  # type: ignore[operator]
        FollowEvent.action.in_(("deleted_by_guide", "deleted_by_customer")))  # type: ignore[attr-defined]
        .order_by(FollowEvent.id).limit(limit))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


@contextlib.asynccontextmanager
async def singleton(engine: AsyncEngine, name: str) -> AsyncIterator[bool]:
    """Yields True in the one process holding the PostgreSQL advisory lock for `name`.

    SQLite has one writer process by design, so there it always yields True.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = _lock_key(name)
    async with engine.connect() as conn:
        got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                       {"k": key})).scalar())
        await conn.commit()
        try:
            yield got
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()


def _lock_key(name: str) -> int:
    return zlib.crc32(f"guidebot:{name}".encode())


class _Turn:
    """A name's lock in this process and how many tasks hold or wait for it."""

    def __init__(self) -> None:
        self.lock, self.users = asyncio.Lock(), 0


# At most this many turns of a process hold a PostgreSQL lock connection at once: the
# engine's pool (guidebot/db/engine.py: 10 + 10 overflow) must keep room for the work inside
# each turn (a read and a write session) and for everything else the process does.
LOCK_CONNECTIONS = 4

# The turns of this process per engine (an engine is one app's database) and name, and the
# gate of the engine's lock connections.
_TURNS: weakref.WeakKeyDictionary[AsyncEngine, dict[str, _Turn]] = weakref.WeakKeyDictionary()
_LOCK_GATES: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


@contextlib.asynccontextmanager
async def turn(engine: AsyncEngine, name: str) -> AsyncIterator[None]:
    """Waits until no other task of any process holds `name`, and holds it meanwhile.

    In this process an asyncio lock per name (so waiting costs no connection); on
    PostgreSQL then the advisory lock of `name` (the same key as `singleton`'s), held on a
    connection of its own until the block ends. The work inside takes its own sessions, so
    a turn costs one or two connections beyond the lock's: at most LOCK_CONNECTIONS turns
    of a process (per engine) hold a lock connection at once, the others waiting for a
    place before taking one (a waiter holds no connection), so a burst of turns on many
    names never empties the pool. Turns must not nest (a turn taken inside another could
    wait for a place its holder keeps); the asyncio lock is not re-entrant either. SQLite
    has one writer process, so there the process's lock is all. A name nobody holds or
    waits for is forgotten.
    """
    turns = _TURNS.setdefault(engine, {})
    mine = turns.setdefault(name, _Turn())
    mine.users += 1
    try:
        async with mine.lock:
            if engine.dialect.name != "postgresql":
                yield
                return
            key = _lock_key(name)
            gate = _LOCK_GATES.setdefault(engine, asyncio.Semaphore(LOCK_CONNECTIONS))
            async with gate, engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                await conn.commit()
                try:
                    yield
                finally:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()
    finally:
        mine.users -= 1
        if not mine.users:
            del turns[name]


def waiting(engine: AsyncEngine, name: str) -> int:
    """How many tasks of this process wait for `name`'s turn (its holder not counted)."""
    mine = _TURNS.get(engine, {}).get(name)
    return mine.users - 1 if mine is not None and mine.lock.locked() else 0


async def task_counts(session: AsyncSession, *, tenant: str) -> dict[str, int]:
    stmt = (select(SopTask.status, func.count()).where(SopTask.tenant == tenant)
            .group_by(SopTask.status))
    return {status: int(n) for status, n in (await session.execute(stmt)).all()}


async def customer_names(session: AsyncSession, *, tenant: str,
                         external_userids: Sequence[str]) -> dict[str, str]:
    """Known customers' names (a reminder lists a few of them)."""
    from guidebot.db.models import Customer

    stmt = select(Customer.external_userid, Customer.name).where(
        Customer.tenant == tenant,
        Customer.external_userid.in_(list(external_userids)))  # type: ignore[attr-defined]
    return {e: n or "" for e, n in (await session.execute(stmt)).all()}


_TASKS = SopTask.__table__  # type: ignore[attr-defined]
_MARK_SENT = (update(_TASKS).where(_TASKS.c.id == bindparam("task_id"))
              .values(status="sent", msgid=bindparam("new_msgid"),
                      recipients=bindparam("new_recipients"),
                      # a task HQ stopped while its call was in flight is looked at (and
                      # cancelled in WeCom) at once, not at its first confirmation check
                      next_check_at=case(
                          (_TASKS.c.stopped_at.is_(None),
                           bindparam("check_at", type_=UTCDateTime())),
                          else_=bindparam("at", type_=UTCDateTime())),
                      updated_at=bindparam("at", type_=UTCDateTime())))
_MARK_STOPPED = (update(_TASKS).where(_TASKS.c.id == bindparam("task_id"))
                 .values(status="cancelled", last_error=STOPPED, next_check_at=None,
                         updated_at=bindparam("at", type_=UTCDateTime())))
_MARK_ENDED = (update(_TASKS).where(_TASKS.c.id == bindparam("task_id"))
               .values(status=bindparam("new_status"), last_error=bindparam("reason"),
                       updated_at=bindparam("at", type_=UTCDateTime())))
_NOTIFY = ByDialect({
    name: dialect_insert(_TASKS).on_conflict_do_nothing(index_elements=["tenant", "key"])
    for name, dialect_insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))})


def mark_sent(*, task_id: int, msgid: str, recipients: int, check_at: datetime | None,
              now: datetime) -> Write:
    """The task reached WeCom (deferred, recorded with its outbox row)."""
    return Write(_MARK_SENT, {"task_id": task_id, "new_msgid": msgid,
                              "new_recipients": recipients, "check_at": check_at, "at": now})


def mark_cancelled(*, task_id: int, reason: str, now: datetime) -> Write:
    return Write(_MARK_ENDED, {"task_id": task_id, "new_status": "cancelled",
                               "reason": reason[:512], "at": now})


def mark_stopped(*, task_id: int, now: datetime) -> Write:
    """A stopped task is cancelled (deferred: recorded with its cancel call's outbox row)."""
    return Write(_MARK_STOPPED, {"task_id": task_id, "at": now})


def mark_failed(*, task_id: int, reason: str, now: datetime) -> Write:
    """The task cannot be sent (e.g. the material it names is withdrawn): nothing was sent."""
    return Write(_MARK_ENDED, {"task_id": task_id, "new_status": "failed",
                               "reason": reason[:512], "at": now})


def new_task(*, now: datetime, **values: Any) -> Write:
    """A task row unless its key exists (deferred)."""
    row = {"version": 0, "step_index": 0, "recipients": 0, "status": "queued", "msgid": "",
           "confirmed": 0, "reminders": 0, "detail": "", "last_error": "",
           "calling_at": None, "next_check_at": None, **values,
           "created_at": now, "updated_at": now}
    return Write(_NOTIFY, row)


async def tasks_by_id(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, SopTask]:
    found: dict[int, SopTask] = {}
    for start in range(0, len(ids), 500):
        stmt = select(SopTask).where(SopTask.id.in_(list(ids[start:start + 500])))  # type: ignore[union-attr]
        found.update({t.id: t for t in (await session.execute(stmt)).scalars() if t.id})
    return found


async def tasks_of_source(session: AsyncSession, *, tenant: str, source: str,
                          limit: int) -> list[SopTask]:
    """A drop's (or an SOP's) tasks, newest first, notices to guides left out."""
    stmt = (select(SopTask).where(SopTask.tenant == tenant, SopTask.source == source,
                                  SopTask.kind != "notify")
            .order_by(SopTask.id.desc()).limit(limit))  # type: ignore[union-attr]
    return list((await session.execute(stmt)).scalars())


async def record_firing(session: AsyncSession, *, tenant: str, drop_id: str, firing: str,
                        over_quota: int, duplicates: int) -> None:
    """A drop's firing to customers and what it left out; a firing recorded already (the same
    key fired again, which makes no task either) keeps its first counts."""
    stmt = (insert_for(session, SopDropFiring)
            .values(tenant=tenant, drop_id=drop_id, firing=firing, over_quota=over_quota,
                    duplicates=duplicates, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["tenant", "drop_id", "firing"]))
    await session.execute(stmt)


async def firings_of_drop(session: AsyncSession, *, tenant: str, drop_id: str,
                          limit: int) -> list[SopDropFiring]:
    """A drop's recorded firings, newest first (firings made before 0054 have none)."""
    stmt = (select(SopDropFiring)
            .where(SopDropFiring.tenant == tenant,  # type: ignore[arg-type]
                   SopDropFiring.drop_id == drop_id)  # type: ignore[arg-type]
            .order_by(SopDropFiring.id.desc()).limit(limit))  # type: ignore[union-attr]
    return list((await session.execute(stmt)).scalars())


async def firing_recorded(session: AsyncSession, *, tenant: str, drop_id: str,
                          firing: str) -> bool:
    """Whether this firing of the drop was recorded (it may have made no task)."""
    stmt = select(SopDropFiring.id).where(
        SopDropFiring.tenant == tenant, SopDropFiring.drop_id == drop_id,  # type: ignore[arg-type]
        SopDropFiring.firing == firing)  # type: ignore[arg-type]
    return (await session.execute(stmt)).first() is not None


async def firing_made(session: AsyncSession, *, tenant: str, drop_id: str,
                      firing: str) -> bool:
    """Whether this firing of the drop was made before: recorded, or a task of it exists (a
    key fired again makes nothing more)."""
    if await firing_recorded(session, tenant=tenant, drop_id=drop_id, firing=firing):
        return True
    stmt = select(SopTask.id).where(
        SopTask.tenant == tenant, SopTask.source == f"drop:{drop_id}",  # type: ignore[arg-type]
        SopTask.key.startswith(f"drop:{drop_id}:{firing}:",  # type: ignore[call-arg]
                               autoescape=True)).limit(1)
    return (await session.execute(stmt)).first() is not None


async def stop_tasks(session: AsyncSession, *, tenant: str, ids: Sequence[int],
                     now: datetime) -> tuple[list[int], list[int], int]:
    """HQ stops these tasks: queued ones (and their queued notices to the guide) are cancelled
    here, before any call; ones being sent or sent are flagged (`stopped_at`) and due for a
    look now, which cancels them in WeCom. Returns (cancelled here, flagged, how many queued
    notices were cancelled: a task confirmed since the stop read it leaves only its notice)."""
    if not ids:
        return [], [], 0
    cancelled = list((await session.execute(
        update(SopTask).where(SopTask.id.in_(list(ids)),  # type: ignore[union-attr]
                              SopTask.status == "queued")
        .values(status="cancelled", last_error=STOPPED, stopped_at=now, updated_at=now)
        .returning(SopTask.id).execution_options(synchronize_session=False))).scalars())
    flagged = list((await session.execute(
        update(SopTask).where(SopTask.id.in_(list(ids)),  # type: ignore[union-attr]
                              SopTask.status.in_(("sending", "sent")),  # type: ignore[attr-defined]
                              SopTask.stopped_at.is_(None))  # type: ignore[union-attr]
        .values(stopped_at=now, next_check_at=now, updated_at=now)
        .returning(SopTask.id).execution_options(synchronize_session=False))).scalars())
    notices = [f"notify:{i}" for i in ids]
    notified = list((await session.execute(
        update(SopTask).where(SopTask.tenant == tenant,
                              SopTask.key.in_(notices),  # type: ignore[attr-defined]
                              SopTask.status == "queued")
        .values(status="cancelled", last_error=STOPPED, stopped_at=now, updated_at=now)
        .returning(SopTask.id).execution_options(synchronize_session=False))).scalars())
    return sorted(cancelled), sorted(flagged), len(notified)


async def tasks_to_group(session: AsyncSession, *, tenant: str, chat_id: str,
                         limit: int) -> list[SopTask]:
    """The 群发 tasks made for a customer group, newest first: a group SOP's (its steps, found
    through the group's enrollments) and group_task drops' (the group in the task's list)."""
    enrolled = select(SopEnrollment.id).where(SopEnrollment.tenant == tenant,
                                              SopEnrollment.external_userid == chat_id)
    stepped = select(SopStep.task_id).where(
        SopStep.enrollment_id.in_(enrolled),  # type: ignore[attr-defined]
        SopStep.task_id.is_not(None))  # type: ignore[union-attr]
    listed = and_(SopTask.source.startswith("drop:"),  # type: ignore[attr-defined]
                  SopTask.detail.contains(f'"{chat_id}"', autoescape=True))  # type: ignore[attr-defined]
    stmt = (select(SopTask).where(SopTask.tenant == tenant, SopTask.kind == "group_task",
                                  or_(SopTask.id.in_(stepped), listed))  # type: ignore[union-attr]
            .order_by(SopTask.id.desc()).limit(limit))  # type: ignore[union-attr]
    return list((await session.execute(stmt)).scalars())
