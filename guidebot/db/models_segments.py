"""Saved customer segments (客户分群): a named filter over a tenant's customers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class CustomerSegment(SQLModel, table=True):
    """One segment of a tenant: `conditions` is the JSON of its conditions (segments/service.py
    checks them), evaluated whenever the segment is used."""

    __tablename__ = "customer_segments"
    # ids are never reused (SQLite too): a drop naming a deleted segment must not reach another
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32, index=True)
    name: str = Field(max_length=64)
    conditions: str = Field(sa_column=Column(Text(), nullable=False))
    operator: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                         nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                         nullable=False))
    # The count the list shows (segments/service.py: stored on save and on opening the
    # segment, refreshed by the list when older than COUNT_FRESH_S); None: never counted.
    last_count: int | None = None
    counted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                       nullable=True))


class SegmentTagRun(SQLModel, table=True):
    """One 批量打标签 run: a corp tag marked on a segment's customers, staged in the
    background a page at a time (segments/tagging.py). `cursor` is the members' page the
    staging goes on from (resumed by another process, or the next start, once `lease_until`
    has passed); the counts are those of the pages staged so far; the outbox rows it made
    have ids from `first_outbox_id` to `last_outbox_id` and keys "mark_tag:run:{id}:…"."""

    __tablename__ = "segment_tag_runs"
    __table_args__ = (Index("ix_segment_tag_runs_segment", "tenant", "segment_id", "id"),
                      Index("ix_segment_tag_runs_state", "state", "lease_until"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    segment_id: int
    tag_id: str = Field(max_length=64)
    tag: str = Field(default="", max_length=64)
    state: str = Field(default="staging", max_length=16)  # staging | staged | failed
    matched: int = 0
    queued: int = 0
    carrying: int = 0
    no_guide: int = 0
    repeated: int = 0
    cursor: str = Field(default="", sa_column=Column(Text(), nullable=False, default=""))
    first_outbox_id: int | None = None
    last_outbox_id: int | None = None
    error: str = Field(default="", max_length=256)
    operator: str = Field(default="", max_length=64)
    lease_owner: str = Field(default="", max_length=40)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                        nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                         nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                        nullable=True))
