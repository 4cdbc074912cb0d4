"""SOP tables: versions, enrollments, per-enrollment step rows, guide tasks, job cursors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


def _utc(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable)


class SopVersion(SQLModel, table=True):
    """Each distinct content of an SOP file is a version; the newest one drives new steps."""

    __tablename__ = "sop_versions"
    tenant: str = Field(primary_key=True, max_length=32)
    sop_id: str = Field(primary_key=True, max_length=48)
    version: int = Field(primary_key=True)
    digest: str = Field(max_length=32)
    enabled: bool = True
    spec: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class SopEnrollment(SQLModel, table=True):
    """One customer of one guide in one SOP; `next_step` is due at `next_at`."""

    __tablename__ = "sop_enrollments"
    __table_args__ = (UniqueConstraint("tenant", "sop_id", "external_userid", "guide"),
                      # due enrollments in (next_at, id) order: a planner pass's range
                      Index("ix_sop_enrollments_due", "tenant", "status", "next_at", "id"),
                      # covers "does this customer have another active enrollment" (quota)
                      Index("ix_sop_enrollments_customer_status", "tenant", "external_userid",
                            "status"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    sop_id: str = Field(max_length=48)
    external_userid: str = Field(max_length=128)
    guide: str = Field(max_length=64)
    store_id: str | None = Field(default=None, max_length=64)
    trigger_at: datetime = Field(sa_column=_utc())
    # active | completed | exited | stopped
    status: str = Field(default="active", max_length=16)
    reason: str = Field(default="", max_length=64)
    version: int = 1
    next_step: int = 0
    next_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    last_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # The quota this enrollment's own 群发 steps used: the natural period of the last one
    # ("day:2026-11-20") and how many fell in it. NULL: not known (planned before 0004).
    # Only routes planning (sop_bulk.quota_contested): at the quota (or NULL) the per-row
    # planner counts the rows. A stopped step that never reached its customer stays counted
    # here (an over-count only routes to the per-row planner; never an under-count).
    quota_period: str | None = Field(default="", max_length=24, nullable=True)
    quota_used: int = 0
    # The enrollment's round: 0, or for a yearly trigger (birthday) the year it celebrates.
    # A completed or exited enrollment of an earlier year is re-armed with the new year's.
    cycle_no: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class SopStep(SQLModel, table=True):
    """A materialised step of one enrollment; at most one row per (enrollment, round, step)
    (a re-armed yearly enrollment takes its steps again in its new round)."""

    __tablename__ = "sop_steps"
    # Few indexes, none on a status that changes in bulk: a step is born "queued" in its
    # task when due at once, and a sent task does not rewrite its steps (see effective_status).
    __table_args__ = (UniqueConstraint("enrollment_id", "cycle_no", "step_index",
                                       name="uq_sop_steps_enrollment_cycle_step"),
                      # steps waiting for a later time (quiet hours, quota): the batcher's scan
                      Index("ix_sop_steps_planned", "tenant", "due_at",
                            sqlite_where=text("status = 'planned'"),
                            postgresql_where=text("status = 'planned'")),
                      # (a customer's steps are found through their enrollments)
                      # a task's customers
                      Index("ix_sop_steps_task_customers", "task_id", "status",
                            "external_userid"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    enrollment_id: int
    sop_id: str = Field(max_length=48)
    version: int
    step_index: int
    cycle_no: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    channel: str = Field(max_length=16)
    message: str = Field(max_length=64)
    guide: str = Field(max_length=64)
    external_userid: str = Field(max_length=128)
    due_at: datetime = Field(sa_column=_utc())
    # planned | queued (in a task; sent once the task is) | sent | skipped | cancelled | failed
    status: str = Field(default="planned", max_length=16)
    reason: str = Field(default="", max_length=128)
    task_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class SopTask(SQLModel, table=True):
    """One WeCom side effect for one guide: a 群发 task, a reminder or a moment task."""

    __tablename__ = "sop_tasks"
    __table_args__ = (UniqueConstraint("tenant", "key"),
                      Index("ix_sop_tasks_status", "status", "next_check_at"),
                      # the admin listing, newest first, a page at a time (0049)
                      Index("ix_sop_tasks_tenant", "tenant", "id"),
                      Index("ix_sop_tasks_guide", "tenant", "guide", "id"),
                      Index("ix_sop_tasks_source", "tenant", "source", "id"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    key: str = Field(max_length=160)
    kind: str = Field(max_length=16)  # guide_task | reminder | moment | notify
    source: str = Field(max_length=64)  # sop:<id> or drop:<id>
    version: int = 0
    step_index: int = 0
    guide: str = Field(max_length=64)
    message: str = Field(max_length=64)
    recipients: int = 0
    # queued | sending | sent | confirmed | cancelled | failed
    status: str = Field(default="queued", max_length=16)
    msgid: str = Field(default="", max_length=128)
    confirmed: int = 0
    reminders: int = 0
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    last_error: str = Field(default="", max_length=512)
    calling_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    next_check_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # HQ stopped the 群发 this task belongs to (停止群发): not sent, or cancelled in WeCom
    stopped_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class SopCursor(SQLModel, table=True):
    """Progress of singleton scans and drop schedules (a watermark or last firing)."""

    __tablename__ = "sop_cursors"
    tenant: str = Field(primary_key=True, max_length=32)
    name: str = Field(primary_key=True, max_length=80)
    value: str = Field(default="", max_length=128)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class SopDropSend(SQLModel, table=True):
    """A customer a content drop's 群发 task was made for. It counts against the customer's
    per-customer quota like an SOP step does (the planner reads these beside the steps)."""

    __tablename__ = "sop_drop_sends"
    __table_args__ = (UniqueConstraint("task_id", "external_userid"),
                      Index("ix_sop_drop_sends_customer", "tenant", "external_userid", "at"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    task_id: int
    external_userid: str = Field(max_length=128)
    at: datetime = Field(sa_column=_utc())


class SopDropFiring(SQLModel, table=True):
    """One firing of a content drop to customers (群发记录), recorded with the tasks it made:
    the customers it left out because their 群发 quota was used and the relations it left out
    because their customer is reached through another guide. Kept here, not only on tasks:
    a guide whose customers were all left out has no task to carry them."""

    __tablename__ = "sop_drop_firings"
    __table_args__ = (UniqueConstraint("tenant", "drop_id", "firing"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    drop_id: str = Field(max_length=64)
    firing: str = Field(max_length=64)  # the scheduled time (ISO) or "manual:<digest>"
    over_quota: int = 0
    duplicates: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class SopSwitch(SQLModel, table=True):
    """HQ switched an SOP off in the console (or the admin API): as when its file says
    enabled = false, enrollments stop at their next due step and no one new is enrolled,
    until it is switched on again (the row is then removed). Kept apart from the versions,
    which follow the file's own `enabled`."""

    __tablename__ = "sop_switches"
    tenant: str = Field(primary_key=True, max_length=32)
    sop_id: str = Field(primary_key=True, max_length=48)
    operator: str = Field(default="", max_length=64)
    switched_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
