"""Tables of the chat sidebar: the JS-SDK jsapi tickets, shared by every guidebot process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class JsapiTicket(SQLModel, table=True):
    """One ticket per corp, app (agent id) and kind ("agent_config" for ww.register's
    agentConfig). WeCom limits ticket fetches per hour per corp and per app, so every process
    reads the same row instead of fetching its own."""

    __tablename__ = "jsapi_tickets"
    corp_id: str = Field(primary_key=True, max_length=64)
    agent_id: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    ticket: str = Field(max_length=512)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    fetched_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
