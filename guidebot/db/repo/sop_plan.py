"""SOP queries: versions, enrollments and step rows (claims use FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Follow
from guidebot.db.models_sop import SopDropSend, SopEnrollment, SopStep, SopTask, SopVersion
from guidebot.db.repo._dialect import insert_for, is_postgres
from guidebot.db.types import utcnow
from guidebot.db.writes import Write

COUNTED_STEPS = ("planned", "queued", "sent")
UNSENT_TASKS = ("queued", "sending")  # a queued step's task not yet handed to WeCom
SENT_TASKS = ("sent", "confirmed")


async def latest_versions(session: AsyncSession, *, tenant: str) -> dict[str, SopVersion]:
    newest = (select(SopVersion.sop_id, func.max(SopVersion.version).label("v"))
              .where(SopVersion.tenant == tenant).group_by(SopVersion.sop_id).subquery())
    stmt = select(SopVersion).join(newest, (SopVersion.sop_id == newest.c.sop_id)
                                   & (SopVersion.version == newest.c.v)).where(
        SopVersion.tenant == tenant)
    return {v.sop_id: v for v in (await session.execute(stmt)).scalars()}


async def newest_version_heads(session: AsyncSession, *, tenant: str
                               ) -> dict[str, tuple[int, str, bool]]:
    """sop_id → (version, digest, enabled) of each SOP's newest version, without the spec
    text (a version never changes: callers keep the parsed spec by its digest)."""
    newest = (select(SopVersion.sop_id, func.max(SopVersion.version).label("v"))
              .where(SopVersion.tenant == tenant).group_by(SopVersion.sop_id).subquery())
    stmt = (select(SopVersion.sop_id, SopVersion.version, SopVersion.digest,  # type: ignore[call-overload]
                   SopVersion.enabled)
            .join(newest, (SopVersion.sop_id == newest.c.sop_id)
                  & (SopVersion.version == newest.c.v))
            .where(SopVersion.tenant == tenant))
    return {row[0]: (row[1], row[2], bool(row[3]))
            for row in (await session.execute(stmt)).all()}


async def version_spec(session: AsyncSession, *, tenant: str, sop_id: str,
                       version: int) -> str | None:
    stmt = select(SopVersion.spec).where(SopVersion.tenant == tenant,  # type: ignore[call-overload]
                                         SopVersion.sop_id == sop_id,
                                         SopVersion.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_version(session: AsyncSession, *, tenant: str, sop_id: str,
                      version: int) -> SopVersion | None:
    return await session.get(SopVersion, (tenant, sop_id, version))


async def add_version(session: AsyncSession, *, tenant: str, sop_id: str, version: int,
                      digest: str, enabled: bool, spec: str) -> bool:
    """False when another process wrote that version number first."""
    stmt = insert_for(session, SopVersion).values(
        tenant=tenant, sop_id=sop_id, version=version, digest=digest, enabled=enabled,
        spec=spec, created_at=utcnow()).on_conflict_do_nothing()
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


_INSERT_ENROLLMENT: dict[tuple[bool, bool, tuple[str, ...]], Any] = {}  # built once, run with
# parameters: by is_postgres, per customer and the columns given


async def insert_enrollment(session: AsyncSession, *, per_customer: bool = False,
                            **values: Any) -> int | None:
    """The new enrollment's id, or None: one per (tenant, sop, customer, guide); with
    `per_customer` (an SOP of `reach = "customer"`), none either when the customer has any
    enrollment of this SOP through another guide. That rule holds in SQL, not by a read
    before the write: the INSERT … SELECT … WHERE NOT EXISTS runs, on PostgreSQL, under a
    transaction-scoped advisory lock on (tenant, SOP, customer), so two processes enrolling
    the customer through two guides take turns and the second finds the first's row (under
    READ COMMITTED each statement sees what committed before it); SQLite has one writer."""
    now = utcnow()
    postgres = is_postgres(session)
    connection = await session.connection()
    if per_customer and postgres:
        await connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {
            "k": f"guidebot-sop-reach:{values['tenant']}\x1f{values['sop_id']}"
                 f"\x1f{values['external_userid']}"})
    key = (postgres, per_customer, tuple(sorted(values)))
    stmt = _INSERT_ENROLLMENT.get(key)
    if stmt is None:
        stmt = _INSERT_ENROLLMENT[key] = _enrollment_insert(
            session, ["created_at", "updated_at", *sorted(values)], per_customer, postgres)
    result = await connection.execute(stmt, {"created_at": now, "updated_at": now, **values})
    return result.scalar_one_or_none()  # type: ignore[no-any-return]


def _enrollment_insert(session: AsyncSession, columns: list[str], per_customer: bool,
                       postgres: bool) -> Any:
    table = SopEnrollment.__table__  # type: ignore[attr-defined]
    insert = insert_for(session, table)
    if per_customer:  # PostgreSQL types a SELECT's bare parameters as text: cast them there
        typed = cast if postgres else type_coerce
        taken = select(table.c.id).where(
            table.c.tenant == bindparam("tenant"), table.c.sop_id == bindparam("sop_id"),
            table.c.external_userid == bindparam("external_userid")).exists()
        row = select(*[typed(bindparam(c, type_=table.c[c].type), table.c[c].type).label(c)
                       for c in columns]).where(~taken)
        insert = insert.from_select(columns, row)
    return (insert.on_conflict_do_nothing(index_elements=["tenant", "sop_id",
                                                          "external_userid", "guide"])
            .returning(table.c.id))


async def insert_enrollments(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk enrollment (benchmarks, imports); duplicates are ignored."""
    if rows:
        stmt = insert_for(session, SopEnrollment.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=["tenant", "sop_id", "external_userid", "guide"])
        await (await session.connection()).execute(stmt, list(rows))


ENROLLMENT_FIELDS = ("id", "tenant", "sop_id", "external_userid", "guide", "trigger_at",
                     "next_step", "last_at", "quota_period", "quota_used", "cycle_no")


async def enrollments_by_ids(session: AsyncSession, *, ids: Sequence[int]) -> list[Any]:
    """Plain rows with ENROLLMENT_FIELDS, in due order (the caller holds them claimed)."""
    columns = [getattr(SopEnrollment, name) for name in ENROLLMENT_FIELDS]
    found: list[Any] = []
    for start in range(0, len(ids), 500):
        stmt = select(*columns, SopEnrollment.next_at).where(
            SopEnrollment.id.in_(list(ids[start:start + 500])))  # type: ignore[union-attr]
        found.extend((await session.execute(stmt)).all())
    return sorted(found, key=lambda e: (e.next_at, e.id))


async def update_enrollments(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key (one executemany per set of changed columns)."""
    table = SopEnrollment.__table__  # type: ignore[attr-defined]
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(
            {**{f"new_{k}": v for k, v in row.items() if k != "id"}, "row_id": row["id"]})
    conn = await session.connection()
    for keys, group in shapes.items():
        stmt = update(table).where(table.c.id == bindparam("row_id")).values(
            {k: bindparam(f"new_{k}") for k in keys})
        await conn.execute(stmt, group)


async def get_enrollment(session: AsyncSession, *, enrollment_id: int) -> SopEnrollment | None:
    return await session.get(SopEnrollment, enrollment_id)


async def customer_enrollments(session: AsyncSession, *, tenant: str, external_userid: str,
                               statuses: Iterable[str] = ("active", "completed")
                               ) -> list[SopEnrollment]:
    stmt = select(SopEnrollment).where(
        SopEnrollment.tenant == tenant, SopEnrollment.external_userid == external_userid,
        SopEnrollment.status.in_(list(statuses)))  # type: ignore[attr-defined]
    return list((await session.execute(stmt)).scalars())


_ENROLLMENTS = SopEnrollment.__table__  # type: ignore[attr-defined]
_FOLLOWS = Follow.__table__  # type: ignore[attr-defined]
# Built once: the order events' exits and triggers run these for every order (building the
# statement cost as much as running it).
_CUSTOMER_REFS = (select(_ENROLLMENTS.c.id, _ENROLLMENTS.c.sop_id, _ENROLLMENTS.c.guide,
                         _ENROLLMENTS.c.status)
                  .where(_ENROLLMENTS.c.tenant == bindparam("tenant"),
                         _ENROLLMENTS.c.external_userid == bindparam("customer")))
_ACTIVE_GUIDES = (select(_FOLLOWS.c.guide)
                  .where(_FOLLOWS.c.tenant == bindparam("tenant"),
                         _FOLLOWS.c.external_userid == bindparam("customer"),
                         _FOLLOWS.c.status == "active")
                  .order_by(_FOLLOWS.c.added_at))


async def customer_enrollment_refs(session: AsyncSession, *, tenant: str,
                                   external_userid: str) -> list[Any]:
    """(id, sop_id, guide, status) of every enrollment of the customer."""
    connection = await session.connection()  # a Core statement: no ORM session work
    result = await connection.execute(_CUSTOMER_REFS,
                                      {"tenant": tenant, "customer": external_userid})
    return list(result.all())


async def active_guides(session: AsyncSession, *, tenant: str,
                        external_userid: str) -> list[str]:
    """The guides the customer actively follows, earliest added first."""
    connection = await session.connection()
    result = await connection.execute(_ACTIVE_GUIDES,
                                      {"tenant": tenant, "customer": external_userid})
    return [str(guide) for guide in result.scalars()]


async def end_enrollments(session: AsyncSession, *, ids: Sequence[int], status: str,
                          reason: str) -> None:
    if ids:
        await session.execute(update(SopEnrollment).where(
            SopEnrollment.id.in_(list(ids))).values(  # type: ignore[union-attr]
            status=status, reason=reason[:64], next_at=None, updated_at=utcnow()))


async def cancel_pending_steps(session: AsyncSession, *, enrollment_ids: Sequence[int],
                               reason: str) -> int:
    """Planned steps, and queued ones whose task has not been sent yet, are cancelled."""
    if not enrollment_ids:
        return 0
    unsent = select(SopTask.id).where(SopTask.status.in_(UNSENT_TASKS))  # type: ignore[attr-defined]
    result = await session.execute(update(SopStep).where(
        SopStep.enrollment_id.in_(list(enrollment_ids)),  # type: ignore[attr-defined]
        (SopStep.status == "planned")
        | ((SopStep.status == "queued") & SopStep.task_id.in_(unsent))).values(  # type: ignore[union-attr]
        status="cancelled", reason=reason[:128]))
    return int(getattr(result, "rowcount", 0))


async def insert_steps(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """New step rows; an existing (enrollment, round, step) row wins — never a second one."""
    if rows:
        stmt = insert_for(session, SopStep.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=["enrollment_id", "cycle_no", "step_index"])
        await (await session.connection()).execute(stmt, list(rows))


async def counted_times(session: AsyncSession, *, tenant: str, customers: Sequence[str],
                        since: datetime) -> dict[str, list[datetime]]:
    """Each customer's 群发 times since `since`: their steps over all their enrollments and
    the content drops sent to them (for the per-customer quota)."""
    out: dict[str, list[datetime]] = {}
    for start in range(0, len(customers), 500):
        part = customers[start:start + 500]
        steps = (select(SopEnrollment.external_userid, SopStep.due_at)
                 .join(SopStep, SopStep.enrollment_id == SopEnrollment.id)
                 .where(SopEnrollment.tenant == tenant,
                        SopEnrollment.external_userid.in_(part),  # type: ignore[attr-defined]
                        SopStep.channel == "guide_task",
                        SopStep.status.in_(COUNTED_STEPS), SopStep.due_at >= since))  # type: ignore[attr-defined,operator]
        drops = select(SopDropSend.external_userid, SopDropSend.at).where(
            SopDropSend.tenant == tenant, SopDropSend.external_userid.in_(part),  # type: ignore[attr-defined]
            SopDropSend.at >= since)  # type: ignore[operator]
        for stmt in (steps, drops):
            for customer, at in (await session.execute(stmt)).all():
                out.setdefault(customer, []).append(at)
    return out


async def quota_used_between(session: AsyncSession, *, tenant: str, start: datetime,
                             end: datetime) -> dict[str, int]:
    """How many 群发 each customer has in [start, end): steps that count and drops sent (a
    content drop checks this for its quota period; only customers with any are listed)."""
    steps = (select(SopStep.external_userid, func.count())
             .where(SopStep.tenant == tenant, SopStep.channel == "guide_task",
                    SopStep.status.in_(COUNTED_STEPS),  # type: ignore[attr-defined]
                    SopStep.due_at >= start, SopStep.due_at < end)  # type: ignore[operator]
             .group_by(SopStep.external_userid))
    drops = (select(SopDropSend.external_userid, func.count())
             .where(SopDropSend.tenant == tenant, SopDropSend.at >= start,  # type: ignore[operator]
                    SopDropSend.at < end)  # type: ignore[operator]
             .group_by(SopDropSend.external_userid))
    used: dict[str, int] = {}
    for stmt in (steps, drops):
        for customer, n in (await session.execute(stmt)).all():
            used[customer] = used.get(customer, 0) + int(n)
    return used


async def record_drop_sends(session: AsyncSession, *, tenant: str, task_id: int,
                            customers: Sequence[str], at: datetime) -> None:
    """The customers of a drop's 群发 task, for their quota."""
    if customers:
        await session.execute(insert_for(session, SopDropSend).on_conflict_do_nothing(
            index_elements=["task_id", "external_userid"]),
            [{"tenant": tenant, "task_id": task_id, "external_userid": c, "at": at}
             for c in customers])


async def forget_drop_sends(session: AsyncSession, *, task_ids: Sequence[int]) -> None:
    """A drop's tasks that sent nothing (HQ stopped them) no longer count against their
    customers' quota."""
    if task_ids:
        await session.execute(delete(SopDropSend).where(
            SopDropSend.task_id.in_(list(task_ids))))  # type: ignore[attr-defined]


_FORGET_DROP_SENDS = delete(SopDropSend.__table__).where(  # type: ignore[attr-defined]
    SopDropSend.__table__.c.task_id == bindparam("task_id"))  # type: ignore[attr-defined]


def forget_task_drop_sends(*, task_id: int) -> Write:
    """`forget_drop_sends` for one task, deferred (recorded with its cancel call)."""
    return Write(_FORGET_DROP_SENDS, {"task_id": task_id})


async def task_customers(session: AsyncSession, *, task_id: int) -> list[str]:
    """The customers of a task's steps still queued (exited ones were cancelled)."""
    stmt = select(SopStep.external_userid).where(SopStep.task_id == task_id,
                                                 SopStep.status == "queued")
    return sorted(set((await session.execute(stmt)).scalars()))


_SEP = "\x1f"  # unit separator: never part of an external_userid


async def customers_of_tasks(session: AsyncSession, *,
                             task_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each task's customers whose steps are still queued (exited ones were cancelled), in
    order. One joined string per task: a send reads millions of these, and a row per
    customer costs more in the driver than the query does."""
    joined = ("string_agg(DISTINCT external_userid, chr(31) ORDER BY external_userid)"
              if is_postgres(session) else "group_concat(external_userid, char(31))")
    stmt = text(f"SELECT task_id, {joined} FROM sop_steps WHERE task_id IN :ids "
                "AND status = 'queued' GROUP BY task_id").bindparams(
        bindparam("ids", expanding=True))
    out: dict[int, list[str]] = {}
    for start in range(0, len(task_ids), 500):
        found = await session.execute(stmt, {"ids": list(task_ids[start:start + 500])})
        for task_id, customers in found.all():
            out[int(task_id)] = sorted(set(customers.split(_SEP)))
    return out


_STEPS = SopStep.__table__  # type: ignore[attr-defined]
_FAIL_STEP = (update(_STEPS).where(_STEPS.c.task_id == bindparam("of_task"),
                                   _STEPS.c.external_userid == bindparam("customer"),
                                   _STEPS.c.status == "queued")
              .values(status="failed", reason=bindparam("why")))


_CANCEL_TASK_STEPS = (update(_STEPS).where(_STEPS.c.task_id == bindparam("of_task"),
                                           _STEPS.c.status == "queued")
                      .values(status="cancelled", reason=bindparam("why")))


def cancel_task_steps(*, task_id: int, reason: str) -> Write:
    """A stopped task's queued steps are cancelled: its customers never got it (deferred)."""
    return Write(_CANCEL_TASK_STEPS, {"of_task": task_id, "why": reason[:128]})


def fail_step(*, task_id: int, external_userid: str, reason: str) -> Write:
    """A queued step of a task that WeCom refused for this customer (deferred)."""
    return Write(_FAIL_STEP, {"of_task": task_id, "customer": external_userid,
                              "why": reason[:128]})


async def task_steps(session: AsyncSession, *, task_id: int,
                     statuses: Sequence[str] = ("queued",)) -> list[SopStep]:
    stmt = select(SopStep).where(SopStep.task_id == task_id,
                                 SopStep.status.in_(list(statuses)))  # type: ignore[attr-defined]
    return list((await session.execute(stmt)).scalars())


async def set_task_steps(session: AsyncSession, *, task_id: int, status: str, reason: str = "",
                         only: Sequence[str] | None = None,
                         customers: Sequence[str] | None = None) -> None:
    stmt = update(SopStep).where(SopStep.task_id == task_id,
                                 SopStep.status.in_(list(only or ("queued",))))  # type: ignore[attr-defined]
    if customers is not None:
        stmt = stmt.where(SopStep.external_userid.in_(list(customers)))  # type: ignore[attr-defined]
    await session.execute(stmt.values(status=status, reason=reason[:128]))


async def set_step(session: AsyncSession, *, step_id: int, status: str, reason: str = "") -> None:
    await session.execute(update(SopStep).where(SopStep.id == step_id).values(
        status=status, reason=reason[:128]))


def effective_status() -> Any:
    """A queued step is sent once its task is: tasks do not rewrite their steps."""
    return case((and_(SopStep.status == "queued",
                      SopTask.status.in_(SENT_TASKS)), "sent"),  # type: ignore[attr-defined]
                else_=SopStep.status).label("effective")


async def customer_steps(session: AsyncSession, *, tenant: str,
                         external_userid: str) -> list[SopStep]:
    """The customer's steps (detached, with the effective status), in time order."""
    mine = select(SopEnrollment.id).where(SopEnrollment.tenant == tenant,
                                          SopEnrollment.external_userid == external_userid)
    stmt = (select(SopStep, effective_status())
            .outerjoin(SopTask, SopTask.id == SopStep.task_id)
            .where(SopStep.enrollment_id.in_(mine))  # type: ignore[attr-defined]
            .order_by(SopStep.due_at, SopStep.id))  # type: ignore[arg-type]
    out = []
    for step, status in (await session.execute(stmt)).all():
        session.expunge(step)
        step.status = status
        out.append(step)
    return out


async def enrollment_steps(session: AsyncSession, *, enrollment_id: int) -> list[SopStep]:
    stmt = select(SopStep).where(SopStep.enrollment_id == enrollment_id).order_by(
        SopStep.step_index)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def count_steps(session: AsyncSession, *, tenant: str) -> dict[str, int]:
    """Steps per effective status."""
    status = effective_status()
    stmt = (select(status, func.count()).select_from(SopStep)
            .outerjoin(SopTask, SopTask.id == SopStep.task_id)
            .where(SopStep.tenant == tenant).group_by(status))
    return {str(st): int(n) for st, n in (await session.execute(stmt)).all()}


async def enrollment_counts(session: AsyncSession, *, tenant: str) -> dict[str, dict[str, int]]:
    stmt = (select(SopEnrollment.sop_id, SopEnrollment.status, func.count())
            .where(SopEnrollment.tenant == tenant)
            .group_by(SopEnrollment.sop_id, SopEnrollment.status))
    out: dict[str, dict[str, int]] = {}
    for sop_id, status, n in (await session.execute(stmt)).all():
        out.setdefault(sop_id, {})[status] = int(n)
    return out


async def find_enrollment(session: AsyncSession, *, tenant: str, sop_id: str,
                          external_userid: str, guide: str | None) -> SopEnrollment | None:
    """The customer's enrollment through `guide`; with None, their first through any."""
    stmt = select(SopEnrollment).where(
        SopEnrollment.tenant == tenant, SopEnrollment.sop_id == sop_id,
        SopEnrollment.external_userid == external_userid)
    if guide is not None:
        stmt = stmt.where(SopEnrollment.guide == guide)
    stmt = stmt.order_by(SopEnrollment.id).limit(1)  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalar_one_or_none()


async def messages_in_use(session: AsyncSession, *,
                          messages: Sequence[str]) -> dict[str, tuple[int, int]]:
    """message id → (tasks not yet handed to WeCom, steps planned for later) that send it,
    over every tenant (the library is shared); messages nothing sends are left out."""
    if not messages:
        return {}
    tasks = (select(SopTask.message, func.count()).where(
        SopTask.status.in_(UNSENT_TASKS), SopTask.message.in_(list(messages)))  # type: ignore[attr-defined]
        .group_by(SopTask.message))
    steps = (select(SopStep.message, func.count()).where(
        SopStep.status == "planned", SopStep.message.in_(list(messages)))  # type: ignore[attr-defined]
        .group_by(SopStep.message))
    found: dict[str, tuple[int, int]] = {}
    for message, n in (await session.execute(tasks)).all():
        found[message] = (int(n), 0)
    for message, n in (await session.execute(steps)).all():
        found[message] = (found.get(message, (0, 0))[0], int(n))
    return found
