"""操作日志: one row per change HQ made (a successful write to the admin API or a console
form) and per console sign-in or sign-out: who, when, which route, its path ids and the
answer's status. Never a body and never a token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_at", "tenant", "at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=64)  # a member's userid, or "admin token"
    action: str = Field(max_length=200)  # "POST /api/v1/{tenant}/tags" or "sign_in" …
    params: str = Field(sa_column=Column(Text(), nullable=False))  # JSON: the path's ids
    status: int
