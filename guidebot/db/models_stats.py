"""Daily statistics kept incrementally from the source tables (guidebot/stats/daily.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime


class StatsDaily(SQLModel, table=True):
    """One tenant × store × guide × day (tenant timezone); '' stands for no store / no guide."""

    __tablename__ = "stats_daily"
    __table_args__ = (Index("ix_stats_daily_day", "tenant", "day"),)
    tenant: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD
    store_id: str = Field(primary_key=True, max_length=64)
    guide: str = Field(primary_key=True, max_length=64)
    adds_code: int = 0  # adds through one of guidebot's channel codes
    adds_other: int = 0
    deletions: int = 0  # by the guide or by the customer
    new_customers_code: int = 0  # a customer's first add ever, through a channel code
    new_customers_other: int = 0
    first_purchases: int = 0
    repurchases: int = 0
    orders: int = 0  # credited to a guide (share_link or exclusive_guide)
    gmv_fen: int = 0
    orders_new: int = 0  # of those, from customers a channel code brought
    gmv_new_fen: int = 0
    orders_all: int = 0  # every paid order, whoever is credited
    gmv_all_fen: int = 0
    commission_fen: int = 0  # ledger entries (earn, clawback, adjustment) created that day


class StatsCustomer(SQLModel, table=True):
    """What the layers need of one customer, kept alongside the daily rows; read by key by
    the upkeep only (its place in the layer counts is stats/layers.cells)."""

    __tablename__ = "stats_customers"
    tenant: str = Field(primary_key=True, max_length=32)
    external_userid: str = Field(primary_key=True, max_length=128)
    first_added_at: datetime | None = Field(default=None,
                                            sa_column=Column(UTCDateTime(), nullable=True))
    via_code: bool = False
    following: int = 0  # active follow relations
    orders: int = 0
    gmv_fen: int = 0
    first_order_no: str | None = Field(default=None, max_length=64)
    first_paid_at: datetime | None = Field(default=None,
                                           sa_column=Column(UTCDateTime(), nullable=True))
    last_paid_at: datetime | None = Field(default=None,
                                          sa_column=Column(UTCDateTime(), nullable=True))


class StatsOrderMark(SQLModel, table=True):
    """An order already counted, with the cell it was counted in (first purchases move)."""

    __tablename__ = "stats_order_marks"
    tenant: str = Field(primary_key=True, max_length=32)
    order_no: str = Field(primary_key=True, max_length=64)
    day: str = Field(max_length=10)
    store_id: str = Field(max_length=64)
    guide: str = Field(max_length=64)


class StatsWatermark(SQLModel, table=True):
    """How far the upkeep has read a source table: by id for every tenant at once (tenant "*";
    `gaps` holds ids not yet seen below `last_id`, from transactions that had not committed,
    as JSON {id: first seen, epoch s}), or by arrival (time, order_no) for one tenant's
    orders."""

    __tablename__ = "stats_watermarks"
    tenant: str = Field(primary_key=True, max_length=32)
    source: str = Field(primary_key=True, max_length=32)
    last_id: int = 0
    last_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_key: str = Field(default="", max_length=64)  # orders: the order_no read at last_at
    gaps: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class StatsLayerAdds(SQLModel, table=True):
    """Customers by the day of their first add (tenant timezone), whether they still follow a
    guide and their value tier: the layers and tiers are sums over a few hundred rows."""

    __tablename__ = "stats_layer_adds"
    tenant: str = Field(primary_key=True, max_length=32)
    add_day: str = Field(primary_key=True, max_length=10)
    following: bool = Field(primary_key=True)
    tier: str = Field(primary_key=True, max_length=8)  # definitions.VALUE_TIERS or "none"
    customers: int = 0


class StatsLayerBuyers(SQLModel, table=True):
    """Customers who still follow a guide and have bought, by the day of their last purchase
    and of their first add: the "active" layer (bought lately, not new) reads these."""

    __tablename__ = "stats_layer_buyers"
    tenant: str = Field(primary_key=True, max_length=32)
    paid_day: str = Field(primary_key=True, max_length=10)
    add_day: str = Field(primary_key=True, max_length=10)
    customers: int = 0


class StatsGroupDaily(SQLModel, table=True):
    """Customer group members per tenant × store × guide × day (tenant timezone), the guide
    being the groups' owner and the store theirs: customers who joined one of the owner's
    groups while in none of them, who left the last one, and who came with or went with a
    group handed to another owner. Counted from group_customer_changes (migration 0058)."""

    __tablename__ = "stats_group_daily"
    __table_args__ = (Index("ix_stats_group_daily_day", "tenant", "day"),)
    tenant: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=10)
    store_id: str = Field(primary_key=True, max_length=64)
    guide: str = Field(primary_key=True, max_length=64)
    group_joins: int = 0
    group_leaves: int = 0
    group_handed_in: int = 0
    group_handed_out: int = 0


class StatsGroupCustomer(SQLModel, table=True):
    """In how many of an owner's groups a customer is (as counted so far), so a customer
    joining a second group of the same owner is not counted again; read by key by the upkeep
    only."""

    __tablename__ = "stats_group_customers"
    tenant: str = Field(primary_key=True, max_length=32)
    owner: str = Field(primary_key=True, max_length=64)
    external_userid: str = Field(primary_key=True, max_length=128)
    groups: int = 0


class StatsBatchOrder(SQLModel, table=True):
    """The orders one upkeep transaction is counting (copied here in one statement, so every
    statement of the batch sees the same set), with the cell each is counted in and whether it
    is its customer's first purchase and from a customer a channel code brought. Empty outside
    that transaction. Keyed by customer and payment, so a customer's orders are adjacent
    (SQLite: a table without rowid, one B-tree)."""

    __tablename__ = "stats_batch_orders"
    __table_args__ = {"sqlite_with_rowid": False}
    tenant: str = Field(primary_key=True, max_length=32)
    external_userid: str = Field(primary_key=True, max_length=128)  # '' without a customer
    paid_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    order_no: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    amount_fen: int = 0
    day: str = Field(max_length=10)  # of paid_at, in the tenant's time zone
    store_id: str = Field(max_length=64)
    guide: str = Field(max_length=64)
    guide_rule: int = 0  # 1: credited to a guide (definitions.GUIDE_RULES)
    is_first: int = 0  # 1: the customer's earliest order so far
    via_code: int = 0  # 1: the customer's first add was through a channel code
