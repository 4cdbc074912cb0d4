"""Customers' birthdays (生日关怀): brand HQ's CRM members' month and day, the year if known.
WeCom holds no birthdays; they are set by the admin API or the console."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class CustomerBirthday(SQLModel, table=True):
    """One customer's birthday; the daily birthday scan finds them by (month, day)."""

    __tablename__ = "customer_birthdays"
    __table_args__ = (Index("ix_customer_birthdays_day", "tenant", "month", "day"),)
    tenant: str = Field(primary_key=True, max_length=32)
    external_userid: str = Field(primary_key=True, max_length=128)
    month: int
    day: int
    year: int | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                         nullable=False))
