"""Request and answer shapes of 接待时效 (web/api/kf.py; chat/reply_times.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from guidebot.web.api.shapes import Answer, Day, Shape


class HandoffRange(Shape):
    from_: Day = Field(default="", alias="from",
                       description="YYYY-MM-DD (tenant's day; default: 29 days before `to`)")
    to: Day = Field(default="", description="YYYY-MM-DD (tenant's day; default: today)")


class HandoffsQuery(HandoffRange):
    status: Literal["waiting", "replied", "all"] = Field(
        default="all", description="waiting: customers waiting for a reply now, whenever "
        "handed (the range is not applied); replied | all: handoffs in the range")


class Figures(Answer):
    handoffs: int = Field(description="turns that began in the range: handoffs and transfers "
                          "to the guide, sessions WeCom assigned by itself, and handoffs to "
                          "the pool (from the time they entered it; under the guide who took "
                          "them, or under \"\" until taken)")
    replied: int = Field(description="of those, answered from the WeCom client")
    median_first_response_s: int | None = Field(description="seconds; None: none replied")
    average_first_response_s: int | None = Field(description="seconds; None: none replied")
    replied_within: int = Field(description="first answered within threshold_minutes")
    replied_within_share: float | None = Field(description="replied_within ÷ handoffs")
    waiting_now: int = Field(description="the guide's customers waiting for a reply now")
    overdue_now: int = Field(description="of those, waiting longer than threshold_minutes")


class GuideFigures(Figures):
    guide: str = Field(description="the guide's userid; \"\": the pool (guidebot's handoffs "
                       "to the pool nobody took yet)")
    name: str = Field(description="the guide's name (their userid when unknown)")


class HandoffSummary(Answer):
    from_: str = Field(alias="from")
    to: str
    threshold_minutes: int = Field(description="handoff_reply_minutes (10 when it is 0)")
    guides: list[GuideFigures]
    totals: Figures


class HandoffItem(Answer):
    msgid: str = Field(description="the handed customer message, or the event of WeCom's own "
                       "handoff (the handoff page's id)")
    open_kfid: str
    external_userid: str = Field(description="the 微信客服 customer")
    customer_name: str
    guide: str = Field(description="the servicer who has (had) the conversation; \"\": "
                       "nobody took it from the pool yet")
    guide_name: str
    via: Literal["handoff", "transfer", "pool", "wecom"] = Field(
        description="handoff: guidebot handed it to the servicer; transfer: another servicer "
        "passed it on; pool: guidebot handed it to the pool (待接入池), taken or not; wecom: "
        "WeCom gave the servicer a session guidebot never handed (from the pool, or a transfer)")
    handed_at: str = Field(description="the handed message's time (a handoff to the pool: "
                           "when it entered the pool), or the transfer's or WeCom's (UTC)")
    taken_at: str | None = Field(description="via pool: when a servicer took it (UTC)")
    first_reply_at: str | None
    first_response_s: int | None
    end: Literal["ended", "transferred"] | None = Field(description="None: still open")
    ended_at: str | None
    waiting_since: str | None = Field(description="the first unanswered customer message")
    waited_s: int | None = Field(description="how long the customer has waited now")
    overdue: bool


class HandoffList(Answer):
    status: str
    from_: str = Field(alias="from")
    to: str
    threshold_minutes: int
    items: list[HandoffItem]
