"""Saved customer segments (客户分群): a named filter over a tenant's customers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
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
