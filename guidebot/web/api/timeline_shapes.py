"""Request and answer shapes of a customer's timeline (客户动态) and follow-up notes (跟进记录),
web/api/contacts.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from guidebot.contacts import notes
from guidebot.stats.timeline import DEFAULT_LIMIT, MAX_LIMIT
from guidebot.web.api.shapes import Answer, Shape


class TimelineQuery(Shape):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT,
                       description="how many of the latest events")


class TimelineEvent(Answer):
    at: str = Field(description="when (UTC, ISO 8601)")
    kind: Literal["follow", "card_open", "order", "refund", "sop_step", "group_join",
                  "group_leave", "note", "field"]
    guide: str | None = Field(description=(
        "the guide concerned: the relation's guide, the card's sender, the order's credited "
        "guide (a refund's: its order's), the SOP step's sender, the group's owner, the "
        "note's writer, the guide who set the field (null when HQ did)"))
    guide_name: str | None = Field(description="the guide's name (their userid when unknown)")
    action: str | None = Field(default=None, description=(
        "follow: added | half_added | deleted_by_guide | deleted_by_customer | transferred | "
        "transferred_in | transfer_failed"))
    from_guide: str | None = Field(default=None, description="follow transferred_in: the "
                                   "guide the customer was transferred from")
    sku: str | None = Field(default=None, description="card_open: the product's sku")
    product: str | None = Field(default=None, description="card_open: the product's name "
                                "in the catalog (the sku when the catalog has none)")
    dur_s: int | None = Field(default=None, description="card_open: seconds on the page")
    order_no: str | None = Field(default=None, description="order, refund: the order")
    refund_no: str | None = Field(default=None, description="refund")
    amount_fen: int | None = Field(default=None, description=(
        "order: paid, refund: refunded; integer fen"))
    rule: str | None = Field(default=None, description="order: the attribution rule")
    store: str | None = Field(default=None, description="order: the credited store")
    sop_id: str | None = Field(default=None, description="sop_step")
    sop_title: str | None = Field(default=None, description="sop_step: the SOP's title")
    step: int | None = Field(default=None, description="sop_step: the step number, from 1")
    channel: str | None = Field(default=None, description="sop_step: how it was sent")
    chat_id: str | None = Field(default=None, description="group_join, group_leave")
    group_name: str | None = Field(default=None, description="group_join, group_leave")
    note_id: int | None = Field(default=None, description=(
        "note: a guide wrote a follow-up note (跟进记录); its text is in the customer's notes"))
    field: str | None = Field(default=None, description=(
        "field: a profile field (客户资料) was set; its id in profile_fields.toml (the value "
        "is in the customer's fields; only each field's latest setting is an event)"))
    field_label: str | None = Field(default=None, description="field: the field's label")
    set_by: str | None = Field(default=None, description=(
        "field: who set it, the guide's userid or \"hq\""))


class Timeline(Answer):
    external_userid: str
    events: list[TimelineEvent] = Field(description="newest first; no message text")


class NotesQuery(Shape):
    limit: int = Field(notes.DEFAULT_LIMIT, ge=1, le=notes.MAX_LIMIT,
                       description="how many notes in a page")
    before: int | None = Field(None, ge=1, description="the previous page's `next`: notes "
                               "older than it")


class Note(Answer):
    id: int
    guide: str = Field(description="the guide who wrote it")
    guide_name: str = Field(description="the guide's name (their userid when unknown)")
    text: str = Field(description="the note (1–500 characters)")
    follow_up_on: str | None = Field(description="the day to follow up (YYYY-MM-DD), if set")
    at: str = Field(description="when it was written (UTC, ISO 8601)")
    when: str = Field(description="when it was written, YYYY-MM-DD HH:MM in the tenant's "
                      "time zone")


class Notes(Answer):
    external_userid: str
    notes: list[Note] = Field(description="跟进记录, newest first")
    next: int | None = Field(description="pass as `before` for the next page; null at the end")
