"""Set-based SOP planning: due rows claimed into temp tables, steps and tasks made in bulk.

A planner pass works in one write transaction: the distinct planning inputs of the due
enrollments are planned once each in Python (a "plan" row), the enrollments are claimed into
a temp table against their plan, and steps, tasks and enrollment updates are single
statements over that claim. The batcher does the same for planned steps that fall due later.
Temp tables live per connection: created if missing, emptied before each use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateIndex, CreateTable

from guidebot.db.models_birthdays import CustomerBirthday
from guidebot.db.models_sop import SopEnrollment, SopTask
from guidebot.db.repo import audiences
from guidebot.db.repo._dialect import insert_for, is_postgres
from guidebot.db.repo.audiences import AudienceFilter
from guidebot.db.types import UTCDateTime

_TEMP = MetaData()
COUNTED = "('planned', 'queued', 'sent')"  # statuses a customer's quota counts

PLAN = Table(
    "sop_plan_tmp", _TEMP,
    Column("pid", Integer, primary_key=True),
    Column("sop_id", String(48)), Column("next_step", Integer),
    Column("trigger_at", UTCDateTime()), Column("floor", UTCDateTime()),
    Column("action", String(16)),  # step | wait | complete | stop
    Column("version", Integer), Column("channel", String(16)), Column("message", String(64)),
    Column("due_at", UTCDateTime()), Column("step_status", String(16)),
    Column("reason", String(128)), Column("due_now", Integer),
    Column("new_next_step", Integer), Column("new_last_at", UTCDateTime()),
    Column("new_next_at", UTCDateTime()), Column("new_status", String(16)),
    Column("new_reason", String(64)),
    Column("q_count", Integer), Column("q_start", UTCDateTime()), Column("q_end", UTCDateTime()),
    Column("q_key", String(24)),  # the period of the placed 群发 step ("day:2026-11-20")
    Column("tgid", Integer),  # the task group: plans due now that send the same step share it
    prefixes=["TEMPORARY"])
Index("ix_sop_plan_tmp_key", PLAN.c.sop_id, PLAN.c.next_step, PLAN.c.trigger_at,
      PLAN.c.floor)

# Claimed rows and their group: enrollments when planning (with what planning reads of
# them, so no later statement goes back to the enrollment rows), steps when batching.
CLAIM = Table("sop_claim_tmp", _TEMP, Column("id", Integer, primary_key=True),
              Column("gid", Integer), Column("guide", String(64)),
              Column("customer", String(128)), Column("sop_id", String(48)),
              Column("next_step", Integer), Column("trigger_at", UTCDateTime()),
              Column("floor", UTCDateTime()), Column("quota_period", String(24)),
              Column("quota_used", Integer), Column("cycle_no", Integer),
              prefixes=["TEMPORARY"])

# Task per (group, guide, claimed id range): at most 10,000 customers each.
TASK_MAP = Table("sop_map_tmp", _TEMP, Column("gid", Integer), Column("guide", String(64)),
                 Column("lo", Integer), Column("hi", Integer), Column("task_id", Integer),
                 prefixes=["TEMPORARY"])
Index("ix_sop_map_tmp", TASK_MAP.c.gid, TASK_MAP.c.guide, TASK_MAP.c.lo)

# The distinct (sop, version, step, channel, message) groups of due planned steps.
GROUPS = Table("sop_group_tmp", _TEMP, Column("gid", Integer, primary_key=True),
               Column("sop_id", String(48)), Column("version", Integer),
               Column("step_index", Integer), Column("channel", String(16)),
               Column("message", String(64)), prefixes=["TEMPORARY"])
Index("ix_sop_group_tmp", GROUPS.c.sop_id, GROUPS.c.version, GROUPS.c.step_index)

_DUE = ("e.tenant = :tenant AND e.status = 'active' AND e.next_at <= :now")


async def big_cache(session: AsyncSession) -> None:
    """Set-based passes touch million-row indexes: SQLite's default 2 MB page cache makes
    them I/O bound (a per-connection setting; small_cache puts it back)."""
    if not is_postgres(session):
        await session.execute(text("PRAGMA cache_size=-65536"))


async def temp_tables(session: AsyncSession, *tables: Table) -> None:
    """Create (once per connection) and empty the given temp tables."""
    await big_cache(session)
    for table in tables:
        await session.execute(CreateTable(table, if_not_exists=True))
        for index in table.indexes:
            await session.execute(CreateIndex(index, if_not_exists=True))
        await session.execute(table.delete())


async def small_cache(session: AsyncSession) -> None:
    """Back to SQLite's default page cache once a pass is done: the pooled connection would
    otherwise keep up to 64 MB."""
    if not is_postgres(session):
        await session.execute(text("PRAGMA cache_size=-2000"))


async def try_lock(session: AsyncSession, *, key: int) -> bool:
    """A transaction-scoped PostgreSQL advisory lock; SQLite has one writer, so always True."""
    if not is_postgres(session):
        return True
    found = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
    return bool(found.scalar())


def _times(stmt: Any, *names: str) -> Any:
    return stmt.bindparams(*(bindparam(n, type_=UTCDateTime()) for n in names))


async def any_due(session: AsyncSession, *, tenant: str, now: datetime) -> bool:
    """Whether any enrollment is due (a read that needs no writer)."""
    stmt = _times(text(f"SELECT 1 FROM sop_enrollments e WHERE {_DUE} LIMIT 1"), "now")
    return (await session.execute(stmt, {"tenant": tenant, "now": now})).first() is not None


async def due_bound(session: AsyncSession, *, tenant: str, now: datetime,
                    limit: int) -> tuple[datetime, int] | None:
    """(next_at, id) of the limit-th due enrollment in (next_at, id) order; None: fewer due."""
    stmt = _times(text(f"SELECT e.next_at, e.id FROM sop_enrollments e WHERE {_DUE} "
                       "ORDER BY e.next_at, e.id LIMIT 1 OFFSET :skip"), "now")
    stmt = stmt.columns(next_at=UTCDateTime(), id=Integer)
    row = (await session.execute(stmt, {"tenant": tenant, "now": now,
                                        "skip": limit - 1})).first()
    return (row[0], int(row[1])) if row else None


_INPUTS = ("sop_id", "next_step", "trigger_at", "floor")


async def claimed_inputs(session: AsyncSession) -> list[tuple[str, int, datetime, datetime]]:
    """The distinct planning inputs (sop, next step, trigger, floor) of the claim. A wave
    often shares one: a scan for min = max comes first, before a sort for GROUP BY."""
    span = ", ".join(f"min({c}), max({c})" for c in _INPUTS)
    low_high = (await session.execute(text(f"SELECT {span} FROM sop_claim_tmp"))).one()
    one = all(low_high[i] == low_high[i + 1] for i in range(0, len(low_high), 2))
    stmt = text(f"SELECT {', '.join(_INPUTS)} FROM sop_claim_tmp "
                + ("LIMIT 1" if one else f"GROUP BY {', '.join(_INPUTS)}")).columns(
        sop_id=String, next_step=Integer, trigger_at=UTCDateTime(), floor=UTCDateTime())
    return [(r[0], int(r[1]), r[2], r[3]) for r in (await session.execute(stmt)).all()]


async def load_plan(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """The plans, and each claimed enrollment pointed at its own."""
    await temp_tables(session, PLAN, TASK_MAP)
    await session.execute(insert(PLAN), list(rows))
    if len(rows) == 1:  # claimed with gid 0
        assert rows[0]["pid"] == 0
    else:
        await session.execute(text(
            "UPDATE sop_claim_tmp SET gid = (SELECT p.pid FROM sop_plan_tmp p "
            "WHERE p.sop_id = sop_claim_tmp.sop_id AND p.next_step = sop_claim_tmp.next_step "
            "AND p.trigger_at = sop_claim_tmp.trigger_at AND p.floor = sop_claim_tmp.floor)"))


async def claim_enrollments(session: AsyncSession, *, tenant: str, now: datetime,
                            bound: tuple[datetime, int] | None) -> int:
    """Claim the due enrollments up to `bound` (next_at, id), with what planning needs of
    them (locked on PostgreSQL). The bound is an index range either way: a row comparison on
    PostgreSQL, two searches on SQLite (which scans past an OR or a row value)."""
    await temp_tables(session, CLAIM)
    values: dict[str, Any] = {"tenant": tenant}
    into = ("INSERT INTO sop_claim_tmp (id, gid, guide, customer, sop_id, next_step, "
            "trigger_at, floor, quota_period, quota_used, cycle_no) ")
    pick = ("SELECT e.id, 0, e.guide, e.external_userid, e.sop_id, e.next_step, e.trigger_at, "
            "coalesce(e.last_at, e.trigger_at), e.quota_period, e.quota_used, e.cycle_no "
            "FROM sop_enrollments e WHERE e.tenant = :tenant AND e.status = 'active' AND ")
    if bound is None:
        sql = f"{into}{pick}e.next_at <= :now"
        values["now"] = now
    else:
        values.update(bound_at=bound[0], bound_id=bound[1])
        sql = (f"{into}{pick}(e.next_at, e.id) <= (:bound_at, :bound_id)"
               if is_postgres(session) else
               f"{into}{pick}e.next_at < :bound_at UNION ALL "
               f"{pick}e.next_at = :bound_at AND e.id <= :bound_id")
    if is_postgres(session):
        sql += " FOR UPDATE OF e SKIP LOCKED"
    stmt = _times(text(sql), *(["bound_at"] if bound else ["now"]))
    return int(getattr(await session.execute(stmt, values), "rowcount", 0) or 0)


async def quota_contested(session: AsyncSession, *, tenant: str,
                          since: datetime) -> list[int]:
    """Claimed enrollments whose 群发 step cannot simply take the plan's slot: their own
    steps used the period's quota already by their counter (which a stop of a step does not
    lower: the per-row planner then counts the rows, the stopped step not among them), their
    quota state is unknown, or the customer has
    another enrollment active or ended since `since` (whose steps could share the period), or
    a content drop was sent to them since `since`. These go through the per-row planner,
    which counts every step and drop of the customer."""
    stmt = _times(text(
        "SELECT c.id FROM sop_claim_tmp c JOIN sop_plan_tmp p ON p.pid = c.gid "
        "WHERE p.q_count IS NOT NULL AND (c.quota_period IS NULL "
        "OR (c.quota_period = p.q_key AND c.quota_used >= p.q_count) "
        "OR EXISTS (SELECT 1 FROM sop_enrollments o WHERE o.tenant = :tenant "
        "AND o.external_userid = c.customer AND o.id <> c.id "
        "AND (o.status = 'active' OR o.updated_at >= :since)) "
        "OR EXISTS (SELECT 1 FROM sop_drop_sends d WHERE d.tenant = :tenant "
        "AND d.external_userid = c.customer AND d.at >= :since))"), "since")
    found = await session.execute(stmt, {"tenant": tenant, "since": since})
    return [int(i) for i in found.scalars()]


async def claimed_rounds(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, int]:
    """The round (cycle_no) of these claimed enrollments, where it is not 0."""
    stmt = text("SELECT id, cycle_no FROM sop_claim_tmp WHERE id IN :ids AND cycle_no <> 0"
                ).bindparams(bindparam("ids", expanding=True))
    found = await session.execute(stmt, {"ids": list(ids)})
    return {int(i): int(c) for i, c in found.all()}


async def unclaim(session: AsyncSession, *, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(CLAIM.delete().where(CLAIM.c.id == bindparam("cid")),
                              [{"cid": i} for i in ids])


_GROUP_OF = {"claim": ("c.gid", ""),  # the claim's own group (batching planned steps)
             # a plan's task group (planning): only plans due now have one
             "plan": ("p.tgid", " JOIN sop_plan_tmp p ON p.pid = c.gid")}


async def task_groups(session: AsyncSession, *, by: str) -> list[Any]:
    """(task group, guide, count, min id) of the claimed rows that go into tasks; `by`
    names where the group comes from: "claim" or "plan"."""
    group, join = _GROUP_OF[by]
    stmt = text(f"SELECT {group}, c.guide, count(*), min(c.id) FROM sop_claim_tmp c{join} "
                f"WHERE {group} IS NOT NULL GROUP BY {group}, c.guide")
    return list((await session.execute(stmt)).all())


async def chunk_starts(session: AsyncSession, *, by: str, gid: int, guide: str,
                       size: int) -> list[int]:
    """The first claimed id of every `size` ids of one (task group, guide)."""
    group, join = _GROUP_OF[by]
    stmt = text("SELECT id FROM (SELECT c.id, row_number() OVER (ORDER BY c.id) AS rn "
                f"FROM sop_claim_tmp c{join} WHERE {group} = :gid AND c.guide = :guide) x "
                "WHERE (rn - 1) % :size = 0 ORDER BY id")
    found = await session.execute(stmt, {"gid": gid, "guide": guide, "size": size})
    return [int(i) for i in found.scalars()]


async def insert_tasks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    """New task rows (keys are unique per claim); their ids in the order given."""
    if not rows:
        return []
    table = SopTask.__table__  # type: ignore[attr-defined]
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in (await session.execute(stmt, list(rows))).scalars()]


async def queued_tasks(session: AsyncSession, *, tenant: str,
                       sources: Sequence[str]) -> list[Any]:
    """Tasks of these sources not yet claimed for sending, locked (the planner grows them)."""
    lock = " FOR UPDATE" if is_postgres(session) else ""
    stmt = text("SELECT id, source, version, step_index, kind, message, guide, recipients "
                "FROM sop_tasks WHERE tenant = :tenant AND status = 'queued' "
                f"AND source IN :sources{lock}").bindparams(bindparam("sources", expanding=True))
    return list((await session.execute(stmt, {"tenant": tenant,
                                              "sources": list(sources)})).all())


async def grow_tasks(session: AsyncSession, *, rows: Sequence[dict[str, Any]],
                     now: datetime) -> None:
    """More customers for waiting tasks: {task_id, more} each."""
    if rows:
        stmt = _times(text("UPDATE sop_tasks SET recipients = recipients + :more, "
                           "updated_at = :now WHERE id = :task_id"), "now")
        await session.execute(stmt, [{**r, "now": now} for r in rows])


async def map_tasks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(TASK_MAP), list(rows))


async def insert_claimed_steps(session: AsyncSession, *, tenant: str, now: datetime) -> int:
    """One step row per claimed enrollment with a step to take; in its task when due now."""
    stmt = _times(text(
        "INSERT INTO sop_steps (tenant, enrollment_id, sop_id, version, step_index, cycle_no, "
        "channel, message, guide, external_userid, due_at, status, reason, task_id, "
        "created_at) SELECT :tenant, c.id, c.sop_id, p.version, c.next_step, c.cycle_no, "
        "p.channel, p.message, "
        "c.guide, c.customer, p.due_at, "
        "CASE WHEN m.task_id IS NULL THEN p.step_status ELSE 'queued' END, p.reason, "
        "m.task_id, :now FROM sop_claim_tmp c JOIN sop_plan_tmp p ON p.pid = c.gid "
        "LEFT JOIN sop_map_tmp m ON m.gid = p.tgid AND m.guide = c.guide "
        "AND c.id BETWEEN m.lo AND m.hi WHERE p.action = 'step' "
        "ON CONFLICT (enrollment_id, cycle_no, step_index) DO NOTHING"), "now")
    result = await session.execute(stmt, {"tenant": tenant, "now": now})
    return int(getattr(result, "rowcount", 0) or 0)


_ADVANCE_EACH = 32  # plans in a pass up to which each gets its own constant UPDATE


async def advance_claimed(session: AsyncSession, *, plans: Sequence[dict[str, Any]],
                          now: datetime) -> int:
    """Every claimed enrollment takes its plan's new state (still active: an exit wins).
    With few plans, one UPDATE of constants per plan; with many, one correlated UPDATE."""
    if len(plans) > _ADVANCE_EACH:
        stmt = _times(text(
            "UPDATE sop_enrollments SET (version, next_step, last_at, next_at, status, reason, "
            "quota_used, quota_period, updated_at) = (SELECT "
            "coalesce(p.version, sop_enrollments.version), p.new_next_step, "
            "coalesce(p.new_last_at, sop_enrollments.last_at), p.new_next_at, p.new_status, "
            "CASE WHEN p.new_reason = '' THEN sop_enrollments.reason ELSE p.new_reason END, "
            "CASE WHEN p.q_key IS NULL THEN sop_enrollments.quota_used "
            "WHEN p.q_key = sop_enrollments.quota_period THEN sop_enrollments.quota_used + 1 "
            "ELSE 1 END, coalesce(p.q_key, sop_enrollments.quota_period), :now "
            "FROM sop_claim_tmp c JOIN sop_plan_tmp p ON p.pid = c.gid "
            "WHERE c.id = sop_enrollments.id) "
            "WHERE id IN (SELECT id FROM sop_claim_tmp) AND status = 'active'"), "now")
        return int(getattr(await session.execute(stmt, {"now": now}), "rowcount", 0) or 0)
    changed = 0
    for plan in plans:
        ending, counted = plan["new_status"] != "active", plan["q_key"] is not None
        result = await session.execute(_ADVANCE[ending, counted], {
            "now": now, "pid": plan["pid"], **{k: plan[k] for k in (
                "version", "new_next_step", "new_last_at", "new_next_at")},
            **({"new_status": plan["new_status"], "new_reason": plan["new_reason"]}
               if ending else {}), **({"q_key": plan["q_key"]} if counted else {})})
        changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


# SET names status only when it changes: SQLite rewrites every index on a column it sets.
_ADVANCE_SQL = (
    "UPDATE sop_enrollments SET version = coalesce(:version, version), "
    "next_step = :new_next_step, last_at = coalesce(:new_last_at, last_at), "
    "next_at = :new_next_at{ending}{counted}, updated_at = :now "
    "WHERE id IN (SELECT id FROM sop_claim_tmp WHERE gid = :pid) AND status = 'active'")
_ENDING = (", status = :new_status, reason = CASE WHEN :new_reason = '' THEN reason "
           "ELSE :new_reason END")
_COUNTED = (", quota_used = CASE WHEN quota_period = :q_key THEN quota_used + 1 ELSE 1 END, "
            "quota_period = :q_key")
_ADVANCE = {(ending, counted): _times(text(_ADVANCE_SQL.format(
    ending=_ENDING if ending else "", counted=_COUNTED if counted else "")),
    "now", "new_last_at", "new_next_at")
    for ending in (False, True) for counted in (False, True)}


async def due_step_groups(session: AsyncSession, *, tenant: str, now: datetime,
                          channels: Sequence[str]) -> list[Any]:
    """Distinct (sop, version, step, channel, message) of planned steps due now."""
    stmt = _times(text(
        "SELECT sop_id, version, step_index, channel, message FROM sop_steps "
        "WHERE tenant = :tenant AND status = 'planned' AND due_at <= :now "
        "AND channel IN :channels GROUP BY sop_id, version, step_index, channel, message"
    ).bindparams(bindparam("channels", expanding=True)), "now")
    found = await session.execute(stmt, {"tenant": tenant, "now": now,
                                         "channels": list(channels)})
    return list(found.all())


async def claim_planned_steps(session: AsyncSession, *, tenant: str, now: datetime,
                              groups: Sequence[dict[str, Any]], limit: int) -> int:
    """Claim up to `limit` due planned steps of these groups (locked on PostgreSQL)."""
    await temp_tables(session, GROUPS, CLAIM, TASK_MAP)
    await session.execute(insert(GROUPS), list(groups))
    lock = " FOR UPDATE OF s SKIP LOCKED" if is_postgres(session) else ""
    stmt = _times(text(
        "INSERT INTO sop_claim_tmp (id, gid, guide) SELECT s.id, g.gid, s.guide "
        "FROM sop_steps s JOIN sop_group_tmp g ON g.sop_id = s.sop_id "
        "AND g.version = s.version AND g.step_index = s.step_index AND g.channel = s.channel "
        "AND g.message = s.message WHERE s.tenant = :tenant AND s.status = 'planned' "
        f"AND s.due_at <= :now ORDER BY s.id LIMIT :limit{lock}"), "now")
    result = await session.execute(stmt, {"tenant": tenant, "now": now, "limit": limit})
    return int(getattr(result, "rowcount", 0) or 0)


async def queue_claimed_steps(session: AsyncSession) -> int:
    """Claimed planned steps join their task."""
    stmt = text(
        "UPDATE sop_steps SET (status, task_id) = (SELECT 'queued', m.task_id "
        "FROM sop_claim_tmp c JOIN sop_map_tmp m ON m.gid = c.gid AND m.guide = c.guide "
        "AND c.id BETWEEN m.lo AND m.hi WHERE c.id = sop_steps.id) "
        "WHERE id IN (SELECT id FROM sop_claim_tmp) AND status = 'planned'")
    return int(getattr(await session.execute(stmt), "rowcount", 0) or 0)


def audience_enrollments(*, tenant: str, sop_id: str, version: int, first_step: int,
                         trigger_at: datetime, next_at: datetime | None,
                         audience: AudienceFilter, once: audiences.Once) -> Any:
    """The SELECT of `enroll_audience`'s new rows: one per customer the audience admits and
    this SOP has not enrolled yet, through the relation `once` chooses."""
    enrolled = (select(_ENROLLMENTS.c.id).where(
        _ENROLLMENTS.c.tenant == audiences.F.tenant, _ENROLLMENTS.c.sop_id == sop_id,
        _ENROLLMENTS.c.external_userid == audiences.F.external_userid).exists())
    return audiences.enrollment_rows(
        tenant=tenant, audience=audience, sop_id=sop_id, version=version,
        first_step=first_step, trigger_at=trigger_at, next_at=next_at, cycle=0, now=trigger_at,
        extra=[~enrolled], once=once)


async def enroll_audience(session: AsyncSession, *, tenant: str, sop_id: str, version: int,
                          first_step: int, trigger_at: datetime, next_at: datetime | None,
                          audience: AudienceFilter, once: audiences.Once) -> int:
    """Enroll every customer the audience admits at once (customer tags over all their
    guides, the guide's store, a segment's members as they match now), through the one
    relation `once` chooses among the admitted ones; a customer enrolled in this SOP already
    (through any guide) is left alone. Returns how many are new."""
    rows = audience_enrollments(tenant=tenant, sop_id=sop_id, version=version,
                                first_step=first_step, trigger_at=trigger_at, next_at=next_at,
                                audience=audience, once=once)
    stmt = insert_for(session, _ENROLLMENTS).from_select(
        audiences.ENROLLMENT_COLUMNS, rows).on_conflict_do_nothing(index_elements=_RELATION)
    await big_cache(session)
    async with audiences.hash_joins(session):  # robust without statistics: see audiences
        result = await session.execute(stmt)
    await small_cache(session)
    return int(getattr(result, "rowcount", 0) or 0)


_ENROLLMENTS = SopEnrollment.__table__  # type: ignore[attr-defined]
_RELATION = ["tenant", "sop_id", "external_userid", "guide"]


async def enroll_birthdays(session: AsyncSession, *, tenant: str, sop_id: str, version: int,
                           cycle: int, month: int, day: int, leap_day: bool,
                           trigger_at: datetime, next_at: datetime | None, now: datetime,
                           audience: AudienceFilter, once: audiences.Once,
                           customers: Sequence[str] = ()) -> int:
    """Enroll the customers whose birthday is (month, day) — and Feb 29 with `leap_day` — for
    the round `cycle` (the year the birthday falls in), each once: through the relation
    `once` chooses among their active relations (not opted out, in the audience); only those
    of `customers` when given. A customer with an active enrollment in this SOP, or one of
    this round (through any guide), is left alone. The chosen relation's enrollment of an
    earlier round that has ended (completed, exited, stopped) is re-armed: step 0 again at
    `trigger_at`, under `version`. Returns how many were enrolled or re-armed."""
    born = CustomerBirthday
    on_day = and_(born.month == month, born.day == day)
    birthday = select(born.external_userid).where(
        born.tenant == audiences.F.tenant, born.external_userid == audiences.F.external_userid,
        or_(on_day, and_(born.month == 2, born.day == 29)) if leap_day else on_day).exists()
    extra = [birthday, ~round_taken(sop_id, cycle)]
    if customers:
        extra.append(audiences.F.external_userid.in_(sorted(set(customers))))
    rows = audiences.enrollment_rows(
        tenant=tenant, audience=audience, sop_id=sop_id, version=version, first_step=0,
        trigger_at=trigger_at, next_at=next_at, cycle=cycle, now=now, extra=extra, once=once)
    return await enroll_round(session, rows)


def round_taken(sop_id: str, cycle: int, *, per_customer: bool = True) -> Any:
    """The relation's customer (`per_customer`), or the relation itself, has an active
    enrollment in this SOP or one of round `cycle` or later: left alone by a round's
    enrolment."""
    e = _ENROLLMENTS.c
    taken = select(e.id).where(
        e.tenant == audiences.F.tenant, e.sop_id == sop_id,
        e.external_userid == audiences.F.external_userid,
        or_(e.status == "active", e.cycle_no >= cycle))
    return (taken if per_customer else taken.where(e.guide == audiences.F.guide)).exists()


async def enroll_round(session: AsyncSession, rows: Any) -> int:
    """Insert the enrollment rows of a round (`rows` selects `ENROLLMENT_COLUMNS`); a
    relation's enrollment of an earlier round that has ended (completed, exited, stopped) is
    re-armed: step 0 again at the new trigger time, under the new version. Returns how many
    were enrolled or re-armed."""
    upsert = insert_for(session, _ENROLLMENTS)
    new = upsert.excluded
    stmt = upsert.from_select(audiences.ENROLLMENT_COLUMNS, rows).on_conflict_do_update(
        index_elements=_RELATION,
        set_={"trigger_at": new.trigger_at, "status": "active", "reason": "",
              "version": new.version, "next_step": 0, "next_at": new.next_at,
              "last_at": None, "store_id": new.store_id, "cycle_no": new.cycle_no,
              "updated_at": new.updated_at},
        where=and_(_ENROLLMENTS.c.status != "active",
                   _ENROLLMENTS.c.cycle_no < new.cycle_no))
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
