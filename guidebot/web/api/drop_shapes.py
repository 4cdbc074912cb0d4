"""Request and answer shapes of the routes for drops HQ creates (web/api/drops.py, 新建群发)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from guidebot.web.api.shapes import (
    IDEMPOTENCY_KEY,
    PRINTABLE,
    Answer,
    AudienceShape,
    Name,
    Shape,
    Text64,
)

Title = Annotated[str, Field(pattern=PRINTABLE, max_length=128)]


class DropAudience(AudienceShape):
    """Who receives it, as a drop file's [audience]: customers by their guide's store, their
    guide and tags; for channel group_task, customer groups by their owner's store, their
    owner and words of the group's name (no tags)."""

    group_names: list[Name] = Field(default_factory=list, max_length=100)


class DropCreate(Shape):
    """A one-off 群发 (新建群发), checked by the rules of a drop file (docs/sop.md)."""

    title: Title = Field(description="what HQ calls it (required)")
    channel: Text64 = Field(description="guide_task, moment or group_task")
    message: Text64 | None = Field(None, description="a library message id (or `material`)")
    material: Text64 | None = Field(None, description="a material id (or `message`)")
    audience: DropAudience = Field(default_factory=DropAudience)
    at: Annotated[str, Field(max_length=40, pattern=PRINTABLE, description=(
        '"now" (sent at once) or an ISO 8601 time with its offset, like '
        "2026-12-12T10:00:00+08:00 (fired by the scheduled run at that time)"))]
    operator: Text64 = Field("", description="who created it (shown in the console)")
    key: Annotated[str, Field(pattern=IDEMPOTENCY_KEY, description=(
        "idempotency key: the same key and body answer the stored result (200) and create "
        "nothing more; the same key with another body answers 409 with what is stored"))] \
        | None = None


class TenantDrop(Answer):
    id: str = Field(description="hq-<n> for a drop created here, else the drop file's id")
    title: str
    source: Literal["library", "console"]
    state: str = Field(description=(
        "scheduled, fired, cancelled or missed (its time passed a day ago unfired); a library "
        "drop may also be disabled or recurring (cron)"))
    enabled: bool
    cron: str
    at: str = Field(description="a one-off drop's time (ISO, with its offset)")
    channel: str
    message: str = Field(description='a message id, or "material:<id>"')
    stores: list[str]
    guides: list[str]
    tags_any: list[str]
    tags_all: list[str]
    tags_none: list[str]
    group_names: list[str]
    segment: int | None = Field(None, description="a customer segment's id (客户分群)")
    operator: str | None = Field(None, description="who created it (console drops)")
    created_at: datetime | None = None
    cancelled_at: datetime | None = None


class DropCreated(Answer):
    drop: TenantDrop
    firing: str = Field(description='sent now: its firing (as GET …/sends names it); else ""')
    tasks: int = Field(description="tasks queued by this call (sent now)")


class DropList(Answer):
    drops: list[TenantDrop] = Field(description=(
        "the content library's drops, then the tenant's own, newest first"))
