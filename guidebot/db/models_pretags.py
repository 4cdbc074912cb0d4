"""预打标签: tags HQ gives customers it knows by WeChat unionid (its CRM, its mini program)
before they add a guide; marked through the guide they add (contacts/pretags.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class PreTag(SQLModel, table=True):
    """One tag waiting for (or applied to) the customer with this unionid."""

    __tablename__ = "pretags"
    __table_args__ = (Index("ix_pretags_import", "tenant", "import_id"),)
    tenant: str = Field(primary_key=True, max_length=32)
    unionid: str = Field(primary_key=True, max_length=128)
    tag_id: str = Field(primary_key=True, max_length=64)
    import_id: str = Field(max_length=32)  # the request that stored it
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
    applied_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))
    guide: str = Field(default="", max_length=64)  # through whom it was marked
    external_userid: str = Field(default="", max_length=128)
