"""跟进记录: a guide's short follow-up notes about a customer they follow, written in the chat
sidebar; every guide of the tenant and HQ read them (the sidebar, the console, the admin API)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow

MAX_NOTE_CHARS = 500


class CustomerNote(SQLModel, table=True):
    __tablename__ = "customer_notes"
    __table_args__ = (Index("ix_customer_notes_customer", "tenant", "external_userid", "id"),
                      Index("ix_customer_notes_follow_up", "tenant", "guide", "follow_up_on"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    external_userid: str = Field(max_length=128)
    guide: str = Field(max_length=64)
    text: str = Field(sa_column=Column(Text(), nullable=False))  # customer data: never logged
    follow_up_on: date | None = None  # the tenant's calendar day to follow up, if any
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
