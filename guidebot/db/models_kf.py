"""微信客服 tables: the sync_msg cursor per account, every message read, per-session counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


def _utc(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable)


TEXT_KEPT = "msgtype = 'text' AND text != ''"  # a text message not blanked by retention


class KfCursor(SQLModel, table=True):
    """kf/sync_msg's next_cursor for one account ("" before the first page). Messages sent
    before `created_at` (a cold start's backlog) are recorded, never answered."""

    __tablename__ = "kf_cursors"
    tenant: str = Field(primary_key=True, max_length=32)
    open_kfid: str = Field(primary_key=True, max_length=64)
    cursor: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class KfMessage(SQLModel, table=True):
    """One sync_msg item, stored once (unique msgid) and ended with a route and a reason.
    `text` is the customer's text for the console's conversation view; it is never logged."""

    __tablename__ = "kf_messages"
    __table_args__ = (
        UniqueConstraint("tenant", "msgid", name="uq_kf_messages_msgid"),
        Index("ix_kf_messages_customer", "tenant", "external_userid", "send_time"),
        Index("ix_kf_messages_status", "tenant", "open_kfid", "status"),
        Index("ix_kf_messages_time", "tenant", "send_time"),  # who wrote lately (0046)
        # the texts still kept, for the retention job's blanking (0064)
        Index("ix_kf_messages_text_kept", "tenant", "send_time",
              sqlite_where=sql(TEXT_KEPT), postgresql_where=sql(TEXT_KEPT)),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    open_kfid: str = Field(max_length=64)
    msgid: str = Field(max_length=128)
    external_userid: str = Field(default="", max_length=128)
    origin: int = 0  # 3 customer, 4 system event, 5 servicer in the WeCom client
    msgtype: str = Field(default="", max_length=32)
    event_type: str = Field(default="", max_length=32)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    send_time: datetime = Field(sa_column=_utc())
    status: str = Field(default="pending", max_length=16)  # pending working replied handoff
    route: str = Field(default="", max_length=16)  # skipped failed
    reason: str = Field(default="", max_length=128)
    guide: str | None = Field(default=None, max_length=64)  # handoff servicer / kf link guide
    # origin 5: who wrote; event session_status_change: the new servicer (0046)
    servicer_userid: str = Field(default="", max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    handled_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class KfSession(SQLModel, table=True):
    """guidebot's own count of kf/send_msg messages since the customer last wrote (≤ 5 in the
    48 h after it), so it stops before WeCom refuses."""

    __tablename__ = "kf_sessions"
    tenant: str = Field(primary_key=True, max_length=32)
    open_kfid: str = Field(primary_key=True, max_length=64)
    external_userid: str = Field(primary_key=True, max_length=128)
    last_customer_at: datetime = Field(sa_column=_utc())
    sent: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class OptOut(SQLModel, table=True):
    """A customer who asked for no more messages (an opt-out word to 微信客服): no SOP enrolls
    them from then on. `external_userid` is the contact's when the kf customer was matched."""

    __tablename__ = "opt_outs"
    tenant: str = Field(primary_key=True, max_length=32)
    external_userid: str = Field(primary_key=True, max_length=128)
    msgid: str = Field(max_length=128)  # the kf message that opted out
    opted_out_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    # The corp tag id marked on their relations (migration 0055): "" none yet, None recorded
    # before it (an undo then takes off the tag chat/opt_out.toml names at that time).
    tag_id: str | None = Field(default="", max_length=64, nullable=True)


class KfCustomer(SQLModel, table=True):
    """A 微信客服 customer's unionid as kf/customer/batchget gave it (only those with one):
    asked once, and how a conversation is found for a contact matched only by unionid."""

    __tablename__ = "kf_customers"
    __table_args__ = (Index("ix_kf_customers_unionid", "tenant", "unionid"),)
    tenant: str = Field(primary_key=True, max_length=32)
    external_userid: str = Field(primary_key=True, max_length=128)
    unionid: str = Field(max_length=128)
    seen_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class KfFlag(SQLModel, table=True):
    """会话质检: a 微信客服 message holding a word of a chat/watch_words.toml rule, flagged once
    per message and rule (unique) in the transaction that stored the message. `guide` is who
    wrote (origin 5) or, for a customer's message, the servicer who had the conversation
    then ("" if none). No text here: the console reads it from kf_messages. `notified_at`:
    an alert rule's flag handed to the outbox (or nobody to tell) (migration 0048)."""

    __tablename__ = "kf_flags"
    __table_args__ = (
        UniqueConstraint("tenant", "msgid", "rule", name="uq_kf_flags_rule"),
        Index("ix_kf_flags_time", "tenant", "send_time"),
        Index("ix_kf_flags_unnotified", "tenant", "notified_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    msgid: str = Field(max_length=128)
    open_kfid: str = Field(max_length=64)
    external_userid: str = Field(default="", max_length=128)
    guide: str = Field(default="", max_length=64)
    origin: int = 0  # 3 customer, 5 servicer
    rule: str = Field(max_length=32)
    word: str = Field(max_length=32)
    level: str = Field(max_length=8)  # warn | alert (the rule's when flagged)
    send_time: datetime = Field(sa_column=_utc())
    flagged_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    notified_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
