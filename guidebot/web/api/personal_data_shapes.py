"""The answer of 查阅复制 (GET /customers/{external_userid}/personal-data): web/api/contacts."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from guidebot.web.api.shapes import Answer


class Section(Answer):
    key: str = Field(description=(
        "profile, relations, bindings, tags, fields, birthday, notes, opt_out, kf_messages, "
        "groups, orders, card_visits, pretags"))
    title: str = Field(description="the section's title in Chinese (as the console shows it)")
    title_en: str
    data: Any = Field(description=(
        "the section's records (a list; an object for profile and kf_messages; an object or "
        "null for birthday and opt_out). Times in the tenant's zone with their offset; "
        "kf_messages holds the latest 5,000 messages, `left_out` counts the older ones, and a "
        "text blanked (erased or past retention) is shown `removed`; orders give amount_fen "
        "and amount_yuan"))


class PersonalData(Answer):
    tenant: str
    external_userid: str
    exported_at: str
    time_zone: str
    sections: list[Section]
