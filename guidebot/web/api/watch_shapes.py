"""Request and answer shapes of 会话质检 (web/api/watch.py; chat/watch.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from guidebot.web.api.handoff_shapes import HandoffRange
from guidebot.web.api.shapes import Answer, Text128


class FlagsQuery(HandoffRange):
    """A range of the tenant's days (as 接待时效's), and the filters."""

    guide: Text128 = Field(default="", description="only this guide's flags (userid)")
    rule: Text128 = Field(default="", description="only this rule's flags (its name)")


class GuideCount(Answer):
    guide: str = Field(description="who wrote, or who had the conversation; \"\": nobody")
    flags: int


class RuleCount(Answer):
    rule: str
    level: str = Field(description="warn | alert (\"\": no longer in watch_words.toml)")
    flags: int


class FlagItem(Answer):
    msgid: str
    send_time: str = Field(description="UTC")
    open_kfid: str
    external_userid: str = Field(description="the 微信客服 customer")
    customer_name: str
    is_contact: bool = Field(description="a 客户联系 contact (the console's customer page)")
    guide: str
    writer: Literal["servicer", "customer"]
    rule: str
    word: str = Field(description="the rule's word found")
    level: str
    text: str = Field(description="the message's text (HQ's view)")


class FlagReport(Answer):
    from_: str = Field(alias="from")
    to: str
    guide: str | None
    rule: str | None
    total: int
    guides: list[GuideCount]
    rules: list[RuleCount]
    rule_names: list[str] = Field(description="the rules of chat/watch_words.toml")
    items: list[FlagItem] = Field(description="newest first, at most listed_max")
    listed_max: int
