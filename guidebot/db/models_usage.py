"""Tables of usage metering that no other record holds: the LLM calls and their tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime


class LlmCall(SQLModel, table=True):
    """One answered call to the model, with the tokens its endpoint reported (usage/llm_meter):
    what a tenant's replies and suggestions cost, for billing. No text is kept."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_tenant_at", "tenant", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    purpose: str = Field(max_length=32)  # "reply" (微信客服), "suggest" (a guide's 建议)
    model: str = Field(max_length=128)
    prompt_tokens: int = 0
    completion_tokens: int = 0
