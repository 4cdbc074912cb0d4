"""Commerce tables: tracked links, touches, identities, rule versions, orders, refunds, ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


def _utc(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable)


def _text() -> Column:  # type: ignore[type-arg]
    return Column(Text, nullable=False)


class TrackedLink(SQLModel, table=True):
    """A guide's tracked mini-program page; the token is the only thing put in the page query."""

    __tablename__ = "commerce_links"
    token: str = Field(primary_key=True, max_length=32)  # unguessable: /t/{token} names no tenant
    tenant: str = Field(max_length=32, index=True)
    guide: str = Field(max_length=64)
    sku: str = Field(default="", max_length=64)
    page: str = Field(max_length=128)
    campaign: str = Field(default="", max_length=64)
    customer: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Touch(SQLModel, table=True):
    """A visit through a tracked link, or an order's own tracking token (kind = order)."""

    __tablename__ = "commerce_touches"
    __table_args__ = (
        Index("ix_commerce_touches_customer", "tenant", "external_userid", "at"),
        # covers the bulk path's reads (migration 0005)
        Index("ix_commerce_touches_decide", "tenant", "external_userid", "at", "kind", "guide",
              "token"),
        Index("ix_commerce_touches_unionid", "tenant", "unionid"),
        Index("ix_commerce_touches_openid", "tenant", "openid"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    external_userid: str | None = Field(default=None, max_length=128)
    unionid: str | None = Field(default=None, max_length=128)
    openid: str | None = Field(default=None, max_length=128)
    guide: str = Field(max_length=64)
    token: str = Field(max_length=32)
    kind: str = Field(default="visit", max_length=16)  # visit | order
    sku: str = Field(default="", max_length=64)
    category: str = Field(default="", max_length=64)  # from the catalog at visit time
    dur_s: int = 0
    at: datetime = Field(sa_column=_utc())


class Identity(SQLModel, table=True):
    """unionid / openid → external_userid, learned from WeCom's conversion APIs or profiles."""

    __tablename__ = "commerce_identities"
    tenant: str = Field(primary_key=True, max_length=32)
    kind: str = Field(primary_key=True, max_length=16)  # unionid | openid
    value: str = Field(primary_key=True, max_length=128)
    external_userid: str = Field(max_length=128)
    source: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class RuleVersion(SQLModel, table=True):
    """The commission rules of a tenant from `effective_at` on (a config hash change adds one)."""

    __tablename__ = "commerce_rule_versions"
    __table_args__ = (Index("ix_commerce_rule_versions_at", "tenant", "effective_at"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    config_hash: str = Field(max_length=64)
    rules: str = Field(sa_column=_text())  # canonical JSON
    effective_at: datetime = Field(sa_column=_utc())


class Order(SQLModel, table=True):
    """A paid order with the attribution decided at ingestion (never recomputed)."""

    __tablename__ = "commerce_orders"
    # a customer's orders, and whether they bought after a day (migration 0068)
    __table_args__ = (Index("ix_commerce_orders_paid", "tenant", "paid_at"),
                      Index("ix_commerce_orders_customer_paid", "tenant", "external_userid",
                            "paid_at"))
    tenant: str = Field(primary_key=True, max_length=32)
    order_no: str = Field(primary_key=True, max_length=64)
    external_userid: str | None = Field(default=None, max_length=128)
    unionid: str | None = Field(default=None, max_length=128)
    openid: str | None = Field(default=None, max_length=128)
    store_id: str | None = Field(default=None, max_length=64)
    tracking: str = Field(default="", max_length=64)
    paid_at: datetime = Field(sa_column=_utc())
    amount_fen: int = 0
    rule: str = Field(max_length=24)  # share_link | exclusive_guide | store | none
    guide: str | None = Field(default=None, max_length=64)
    credited_store: str | None = Field(default=None, max_length=64)
    commission_fen: int = 0
    rule_version_id: int
    evidence: str = Field(sa_column=_text())  # JSON
    lines: str = Field(sa_column=_text())  # JSON: sku, category, quantity, amount, rate, fen
    received_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Refund(SQLModel, table=True):
    """A refund; `held` until its order arrives, then `applied` with its clawback allocation."""

    __tablename__ = "commerce_refunds"
    __table_args__ = (Index("ix_commerce_refunds_order", "tenant", "order_no"),)
    tenant: str = Field(primary_key=True, max_length=32)
    refund_no: str = Field(primary_key=True, max_length=64)
    order_no: str = Field(max_length=64)
    refunded_at: datetime = Field(sa_column=_utc())
    items: str = Field(sa_column=_text())  # JSON as received
    status: str = Field(default="held", max_length=16)
    amount_fen: int = 0
    clawback_fen: int = 0
    allocation: str = Field(default="[]", sa_column=_text())  # JSON per order line
    received_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    applied_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class LedgerEntry(SQLModel, table=True):
    """Append-only commission entries in integer fen (earn +, clawback −, adjustment ±)."""

    __tablename__ = "commerce_ledger"
    __table_args__ = (UniqueConstraint("tenant", "key"),
                      Index("ix_commerce_ledger_period", "tenant", "period"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    key: str = Field(max_length=96)
    kind: str = Field(max_length=16)  # earn | clawback | adjustment
    guide: str = Field(max_length=64)
    order_no: str | None = Field(default=None, max_length=64)
    refund_no: str | None = Field(default=None, max_length=64)
    amount_fen: int
    period: str = Field(max_length=7)
    reason: str = Field(default="", max_length=256)
    operator: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Settlement(SQLModel, table=True):
    """A locked statement period."""

    __tablename__ = "commerce_settlements"
    tenant: str = Field(primary_key=True, max_length=32)
    period: str = Field(primary_key=True, max_length=7)
    net_fen: int = 0
    operator: str = Field(default="", max_length=64)
    settled_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class OrderEvent(SQLModel, table=True):
    """A signed order event as accepted (durably, before its ack): `pending` until the intake
    has attributed it (or applied/held the refund), then `done` with the result it answers.
    Idempotency: one row per order_no (kind paid) and per refund_no (kind refund)."""

    __tablename__ = "commerce_order_events"
    __table_args__ = (UniqueConstraint("tenant", "kind", "key"),
                      Index("ix_commerce_order_events_pending", "status", "id"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    kind: str = Field(max_length=8)  # paid | refund
    key: str = Field(max_length=64)  # order_no | refund_no
    digest: str = Field(max_length=64)  # SHA-256 of the canonical body
    body: str = Field(sa_column=_text())  # canonical JSON (guidebot.commerce.schema)
    status: str = Field(default="pending", max_length=16)  # pending | done | failed
    result: str = Field(default="", sa_column=_text())  # JSON answered for this event
    received_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    done_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
