"""预打标签: tags HQ gives customers it knows by WeChat unionid (its CRM, its mini program)
before they add a guide; marked through the guide they add (contacts/pretags.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class PreTag(SQLModel, table=True):
    """One tag waiting for (being marked on, or applied to) the customer with this unionid:
    pending until handed to the outbox (`outbox_key` set: being marked, or failed when that
    row died), applied once WeCom accepted the mark and it was mirrored (migration 0059)."""

    __tablename__ = "pretags"
    __table_args__ = (Index("ix_pretags_import", "tenant", "import_id"),)
    tenant: str = Field(primary_key=True, max_length=32)
    unionid: str = Field(primary_key=True, max_length=128)
    tag_id: str = Field(primary_key=True, max_length=64)
    import_id: str = Field(max_length=32)  # the request that stored it
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
    # when WeCom accepted the mark (it was mirrored); None while pending or being marked
    applied_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))
    # its mark_tag's outbox key once handed over ("" while pending): its state while marking
    outbox_key: str = Field(default="", max_length=160,
                            sa_column_kwargs={"server_default": ""})
    guide: str = Field(default="", max_length=64)  # through whom it is (being) marked
    external_userid: str = Field(default="", max_length=128)
