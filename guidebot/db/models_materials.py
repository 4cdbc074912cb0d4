"""Tables of the material centre: materials and their versions, the pictures a guide sends to
the app before the text that makes them a submission, uses, and the points ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


def _utc(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable)


def _text() -> Column:  # type: ignore[type-arg]
    return Column(Text, nullable=False)


class Material(SQLModel, table=True):
    """A material as it is now (its content also kept per version in material_versions).
    List columns hold JSON arrays; `link` a JSON object or "{}"."""

    __tablename__ = "materials"
    __table_args__ = (Index("ix_materials_queue", "tenant", "status", "created_at"),
                      Index("ix_materials_contributor", "tenant", "contributor"))
    tenant: str = Field(primary_key=True, max_length=32)
    id: str = Field(primary_key=True, max_length=64)
    source: str = Field(max_length=8)  # hq | guide
    contributor: str = Field(default="", max_length=64)  # the guide's userid; "" for HQ
    title: str = Field(default="", max_length=64)
    text: str = Field(default="", sa_column=_text())
    pictures: str = Field(default="[]", sa_column=_text())  # JSON [stored picture name]
    video: str = Field(default="", max_length=256)
    link: str = Field(default="{}", sa_column=_text())  # JSON {title, url, desc, picurl}
    skus: str = Field(default="[]", sa_column=_text())
    categories: str = Field(default="[]", sa_column=_text())
    occasions: str = Field(default="[]", sa_column=_text())
    flags: str = Field(default="[]", sa_column=_text())  # sensitive words found in the text
    status: str = Field(default="pending", max_length=16)  # pending|approved|rejected|withdrawn
    reason: str = Field(default="", max_length=256)  # why it was rejected
    grade: str = Field(default="", max_length=1)  # S | A | B | C once approved
    version: int = 1
    digest: str = Field(default="", max_length=64)  # of the content (library sync)
    reviewed_by: str = Field(default="", max_length=64)
    reviewed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class MaterialVersion(SQLModel, table=True):
    """Every version of a material's content (JSON), the first one included."""

    __tablename__ = "material_versions"
    tenant: str = Field(primary_key=True, max_length=32)
    material_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    content: str = Field(sa_column=_text())
    editor: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class MaterialPiece(SQLModel, table=True):
    """A picture a guide sent to the app, by its MsgId (a replayed callback is the same row);
    `material_id` is set when a text makes it part of a submission."""

    __tablename__ = "material_pieces"
    __table_args__ = (Index("ix_material_pieces_guide", "tenant", "guide", "material_id"),)
    tenant: str = Field(primary_key=True, max_length=32)
    msg_id: str = Field(primary_key=True, max_length=64)
    guide: str = Field(max_length=64)
    media_id: str = Field(max_length=256)
    stored: str = Field(default="", max_length=96)  # the stored picture's name; "" if refused
    problem: str = Field(default="", max_length=128)  # why the picture was not kept
    material_id: str = Field(default="", max_length=64)
    received_at: datetime = Field(sa_column=_utc())


class MaterialUse(SQLModel, table=True):
    """A guide used a material: sent it to a customer, posted it, or shared its card."""

    __tablename__ = "material_uses"
    __table_args__ = (Index("ix_material_uses_material", "tenant", "material_id"),
                      UniqueConstraint("tenant", "key"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    key: str = Field(max_length=128)  # the caller's idempotency key for this use
    material_id: str = Field(max_length=64)
    guide: str = Field(max_length=64)
    channel: str = Field(max_length=16)  # send | moment | card (a guide's), sop | drop (a task's)
    customer: str = Field(default="", max_length=128)
    day: str = Field(max_length=10)  # tenant-local date
    # The sender's card tracking token: written, never read. A material's card opens and
    # orders are read through its tracked links (campaign "material:<id>"), whose token is one
    # per guide, material and product, so it tells no use apart from the same guide's others.
    # Left until a migration may drop the column.
    token: str = Field(default="", max_length=32)
    at: datetime = Field(sa_column=_utc())


class MaterialUseCustomer(SQLModel, table=True):
    """A customer a use reached: one row per (use, customer). A guide's send names its one
    customer; an SOP step's or drop's 群发 task every customer WeCom did not refuse. Customers
    reached per material are the distinct customers of these rows."""

    __tablename__ = "material_use_customers"
    __table_args__ = (Index("ix_material_use_customers_material", "tenant", "material_id",
                            "customer"),)
    tenant: str = Field(primary_key=True, max_length=32)
    use_key: str = Field(primary_key=True, max_length=128)  # material_uses.key
    customer: str = Field(primary_key=True, max_length=128)
    material_id: str = Field(max_length=64)


class PointsEntry(SQLModel, table=True):
    """Append-only points: `use` entries (key use:<material>:<user>:<day>, so one per using
    guide, material and day) and HQ `adjustment`s."""

    __tablename__ = "points_ledger"
    __table_args__ = (UniqueConstraint("tenant", "key"),
                      Index("ix_points_ledger_period", "tenant", "period"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    key: str = Field(max_length=160)
    kind: str = Field(max_length=16)  # use | adjustment
    guide: str = Field(max_length=64)  # who earns (or loses) the points
    points: int
    material_id: str = Field(default="", max_length=64)
    grade: str = Field(default="", max_length=1)
    user: str = Field(default="", max_length=64)  # the guide whose use earned them
    period: str = Field(max_length=7)  # YYYY-MM, tenant time zone
    reason: str = Field(default="", max_length=256)
    operator: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class PointsDelivery(SQLModel, table=True):
    """A ledger entry the points webhook has delivered (2xx); never delivered twice."""

    __tablename__ = "points_deliveries"
    tenant: str = Field(primary_key=True, max_length=32)
    entry_id: int = Field(primary_key=True)
    status: int = 0
    delivered_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
