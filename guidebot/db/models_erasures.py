"""删除客户个人信息: one row per erased customer. It names the tombstone pseudonym that
replaced the customer's id in the records kept (orders, refunds, the statistics' events),
when, and through what (the admin API, the console, the CLI); never the old id or name."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class CustomerErasure(SQLModel, table=True):
    __tablename__ = "customer_erasures"
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32, index=True)
    tombstone: str = Field(max_length=64)
    erased_at: datetime = Field(default_factory=utcnow,
                                sa_column=Column(UTCDateTime(), nullable=False))
    by: str = Field(max_length=16)  # admin | console | cli
    counts: str = Field(sa_column=Column(Text(), nullable=False))  # JSON {table: rows}
