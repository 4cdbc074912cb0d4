"""Store managers (店长) the address book names: the `department_leader` list department/get
returns for a WeCom department, stored against the store that department makes (the
directory sync, contacts/directory.py). stores.toml's `managers` add to them at read time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class DepartmentLeader(SQLModel, table=True):
    __tablename__ = "department_leaders"
    __table_args__ = (Index("ix_department_leaders_userid", "tenant", "userid"),)
    tenant: str = Field(primary_key=True, max_length=32)
    department_id: int = Field(primary_key=True)
    userid: str = Field(primary_key=True, max_length=64)
    store_id: str = Field(max_length=64)  # the store the department makes
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
