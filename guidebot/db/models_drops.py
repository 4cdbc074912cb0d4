"""One-off 群发 HQ created in the console or the admin API (新建群发)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class TenantDrop(SQLModel, table=True):
    """A drop of one tenant: `spec` is the JSON a drop file's TOML would give (id, title, at,
    channel, message or material, audience), checked as a file is; `at` its time (UTC)."""

    __tablename__ = "tenant_drops"
    tenant: str = Field(primary_key=True, max_length=32)
    drop_id: str = Field(primary_key=True, max_length=48)  # hq-<n>
    spec: str = Field(sa_column=Column(Text(), nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    operator: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                         nullable=False))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                        nullable=True))
