"""Monthly targets (业绩目标) HQ sets for guides and stores: new customers and GMV."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


class SalesTarget(SQLModel, table=True):
    """One guide's or store's targets for one month (YYYY-MM in the tenant's time zone);
    a target left out is None."""

    __tablename__ = "sales_targets"
    tenant: str = Field(primary_key=True, max_length=32)
    period: str = Field(primary_key=True, max_length=7)
    kind: str = Field(primary_key=True, max_length=8)  # "guide" | "store"
    subject: str = Field(primary_key=True, max_length=64)  # a guide userid or a store id
    adds: int | None = None
    gmv_fen: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                         nullable=False))
