"""Tables of the admin API itself: idempotency records of creations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from guidebot.db.models import _utc
from guidebot.db.types import utcnow


class IdempotencyRecord(SQLModel, table=True):
    """A creation answered under a client's key: the same key and body replay `result`."""

    __tablename__ = "api_idempotency"
    tenant: str = Field(primary_key=True, max_length=32)
    scope: str = Field(primary_key=True, max_length=32)  # channels | links
    key: str = Field(primary_key=True, max_length=64)
    digest: str = Field(max_length=64)  # SHA-256 of the canonical request body
    result: str = Field(sa_column=Column(Text, nullable=False))  # the JSON answered
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
