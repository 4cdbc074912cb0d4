"""客户资料: the values of the brand's customer profile fields (content_library/
profile_fields.toml), one row per tenant, customer and field; per customer, not per guide."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow

HQ = "hq"  # set_by of a value HQ set (the console, the admin API)


class CustomerFieldValue(SQLModel, table=True):
    __tablename__ = "customer_field_values"
    tenant: str = Field(max_length=32, primary_key=True)
    external_userid: str = Field(max_length=128, primary_key=True)
    field: str = Field(max_length=32, primary_key=True)  # the field's id in the file
    # the text as set: a multi field's is a JSON list of its options
    value: str = Field(sa_column=Column(Text(), nullable=False))
    set_by: str = Field(max_length=64)  # the guide's userid, or "hq"
    set_at: datetime = Field(default_factory=utcnow,
                             sa_column=Column(UTCDateTime(), nullable=False))
