"""Customer transfers (在职继承 / 离职继承): what HQ asked WeCom to move from one guide to
another, and what became of each customer (guidebot/contacts/transfers.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class TransferBatch(SQLModel, table=True):
    """One request by HQ: move these customers from `handover` to `takeover`."""

    __tablename__ = "transfer_batches"
    __table_args__ = (Index("ix_transfer_batches_tenant_id", "tenant", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # on_job (在职继承) | resigned (离职继承)
    handover: str = Field(max_length=64)
    takeover: str = Field(max_length=64)
    message: str = Field(default="", max_length=200)  # transfer_success_msg, on-job only
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))


class CustomerTransfer(SQLModel, table=True):
    """One customer of a batch. `state`: queued (not yet asked), waiting (WeCom started it;
    `takeover_at` is when it completes by itself), done (`takeover_at`: when), refused (the
    customer refused), limit (the takeover guide has too many customers), failed (WeCom
    refused to start it: `errcode`), none (WeCom has no record of it)."""

    __tablename__ = "customer_transfers"
    __table_args__ = (
        Index("ix_customer_transfers_batch", "batch_id", "external_userid", unique=True),
        Index("ix_customer_transfers_open", "tenant", "state", "handover", "takeover"),
        Index("ix_customer_transfers_customer", "tenant", "external_userid"),
    )
    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="transfer_batches.id")
    tenant: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    handover: str = Field(max_length=64)
    takeover: str = Field(max_length=64)
    external_userid: str = Field(max_length=128)
    state: str = Field(default="queued", max_length=16)
    errcode: int | None = None
    takeover_at: datetime | None = Field(default=None,
                                         sa_column=Column(UTCDateTime(), nullable=True))
    checked_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
