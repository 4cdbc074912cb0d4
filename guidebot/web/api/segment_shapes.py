"""Request and answer shapes of the customer segment routes (web/api/segments.py, 客户分群)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from guidebot.segments.service import MAX_DAYS, MAX_FIELD_CONDITIONS, MAX_LIST
from guidebot.web.api.shapes import Answer, Day, ListedCustomer, Shape, Store, Text64, Userid

TagId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="a corp tag id")]


class SegmentPath(Shape):
    segment_id: int = Field(ge=1, le=2**31 - 1)


class FieldCondition(Shape):
    """A 客户资料 condition on a field of profile_fields.toml (checked against the file as it
    is when saved: an unknown field or option is refused, code segment.unknown_field /
    segment.unknown_option)."""

    model_config = ConfigDict(extra="forbid", strict=False, populate_by_name=True)

    field: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$",
                                description="the field's id in profile_fields.toml")]
    op: Literal["set", "unset", "in", "has_any", "has_all", "between"] = Field(description=(
        "set / unset: has a value or not (any kind); in: a choice field's value is one of "
        "`values`; has_any / has_all: a multi field's value holds any / every one of "
        "`values`; between: a date field's value within `from`..`to` or a number field's "
        "within `min`..`max` (inclusive; either bound may be left out)"))
    values: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=MAX_LIST, description="options of the field")
    from_: Day = Field(default="", alias="from", serialization_alias="from",
                       description="date: on or after this day")
    to: Day = Field(default="", description="date: on or before this day")
    min: int | float | str | None = Field(default=None, description="number: at least this")
    max: int | float | str | None = Field(default=None, description="number: at most this")


class Conditions(Shape):
    """Who belongs, every condition given must hold (an empty one is no condition)."""

    tags_all: list[TagId] = Field(default_factory=list, max_length=MAX_LIST,
                                  description="carries every one of these corp tags (ids)")
    tags_any: list[TagId] = Field(default_factory=list, max_length=MAX_LIST,
                                  description="carries at least one of these corp tags")
    tags_none: list[TagId] = Field(default_factory=list, max_length=MAX_LIST,
                                   description="carries none of these corp tags")
    guides: list[Userid] = Field(default_factory=list, max_length=MAX_LIST,
                                 description="a live relation with one of these guides")
    stores: list[Store] = Field(default_factory=list, max_length=MAX_LIST,
                                description="a live relation with a guide of these stores")
    status: Literal["", "following", "lost", "opted_out"] = Field(
        default="", description="as the customers search: following, lost or opted_out")
    added_from: Day = Field(default="", description="added on or after this day (tenant's days)")
    added_to: Day = Field(default="", description="added on or before this day")
    added_days: int | None = Field(default=None, ge=1, le=MAX_DAYS, description=(
        "added in the last N days, today included (evaluated when the segment is used); "
        "not with added_from/added_to"))
    purchased: Literal["", "yes", "no"] = Field(default="", description=(
        "has bought (yes) or never (no)"))
    quiet_days: int | None = Field(default=None, ge=1, le=MAX_DAYS, description=(
        "has bought, but not in the last N days (last purchase more than N days ago)"))
    layer: Literal["", "new", "active", "dormant", "lost"] = Field(default="", description=(
        "the data centre's customer layer today, from the facts its statistics keep per "
        "customer (new: following, first added in the last 30 days; active: following, not "
        "new, paid in the last 90 days; dormant: following, neither; lost: following no "
        "guide)"))
    fields: list[FieldCondition] = Field(
        default_factory=list, max_length=MAX_FIELD_CONDITIONS, description=(
            "客户资料 conditions, every one must hold (stored with empty keys left out)"))


class SegmentSet(Shape):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    conditions: Conditions = Field(default_factory=Conditions)
    operator: Text64 = Field(default="", description="who saved it (shown in the console)")


class DeletedTag(Shape):
    id: str
    name: str = Field(description="the name the tag last had (empty when never mirrored)")


class RemovedField(Shape):
    field: str = Field(description="the field's id")
    label: str = Field(description="its label now (empty when the field was removed)")
    option: str = Field(description="the option removed (empty when the whole field was)")


class Segment(Answer):
    id: int
    name: str
    conditions: dict[str, object] = Field(description="the conditions given (empty left out)")
    deleted_tags: list[DeletedTag] = Field(default_factory=list, description=(
        "corp tags the conditions name that were deleted in WeCom since: carried by no one "
        "(tags_all or tags_any naming only such tags match no one; tags_none ignores them); "
        "an update must leave them out"))
    removed_fields: list[RemovedField] = Field(default_factory=list, description=(
        "profile fields (option empty) and options the `fields` conditions name that "
        "profile_fields.toml no longer has: still matched by the values kept; an update "
        "must leave them out"))
    count: int = Field(description="customers matching: on one segment, now; in the list, "
                                   "as counted at `counted_at` (recounted when older than "
                                   "10 minutes)")
    counted_at: datetime | None = Field(None, description="when `count` was counted")
    operator: str
    created_at: datetime
    updated_at: datetime


class SegmentList(Answer):
    segments: list[Segment]


class MembersQuery(Shape):
    after: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,400}$")] = Field(
        default="", description="the `next` cursor of the page before")
    limit: int = Field(200, ge=1, le=1000)


class Members(Answer):
    segment: int
    customers: list[ListedCustomer] = Field(description="matching now, newest first")
    next: str | None = Field(description="pass as `after` for the next page; null on the last")


class Deleted(Answer):
    id: int
    deleted: Literal[True]


class SegmentTag(Shape):
    tag_id: TagId
    operator: Text64 = Field(default="", description="who started it (shown in the console)")


class RunPath(Shape):
    segment_id: int = Field(ge=1, le=2**31 - 1)
    run_id: int = Field(ge=1, le=2**31 - 1)


class SegmentTagRun(Answer):
    """A 批量打标签 run. The counts of the staging (`matched` … `repeated`) grow a page at
    a time while `state` is staging; `sent`, `pending`, `failed` and `dead` are its marks in
    the outbox now."""

    id: int = Field(description="the run's id")
    segment: int
    tag_id: str
    tag: str = Field(description="the tag's name")
    state: Literal["staging", "staged", "failed"] = Field(
        description="staging (marks being queued, a page at a time), staged (every mark "
                    "queued; the outbox sends them), failed (see `error`)")
    matched: int = Field(description="customers the segment found, in the pages staged")
    queued: int = Field(description="mark_tag calls queued (one per customer)")
    carrying: int = Field(description="skipped: they carry the tag already")
    no_guide: int = Field(description="skipped: no live relation to mark it on")
    repeated: int = Field(description="skipped: queued by this run already (a customer met "
                                      "twice)")
    sent: int = Field(description="marks WeCom took")
    pending: int = Field(description="marks queued, not sent yet")
    failed: int = Field(description="marks that failed and wait for the outbox's retry")
    dead: int = Field(description="marks given up (refused by WeCom or out of retries)")
    error: str = Field(description="why a failed run stopped (e.g. the segment was deleted)")
    operator: str
    created_at: datetime
    finished_at: datetime | None = Field(description="when staging ended")


class SegmentTagRuns(Answer):
    runs: list[SegmentTagRun] = Field(description="newest first, 50 at most")


class RunStaging(Answer):
    error: str
    field: str
    reason: str
    run: SegmentTagRun = Field(description="the run staging for this segment and tag")
