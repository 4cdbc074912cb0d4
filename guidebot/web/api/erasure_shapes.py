"""The answer of 删除客户个人信息 (POST /customers/{external_userid}/erase): web/api/contacts."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from guidebot.web.api.shapes import Answer


class Erasure(Answer):
    tombstone: str = Field(description=(
        "the pseudonym (erased-<hex>) that replaced the customer's external_userid in the "
        "records kept: orders, refunds, commissions and the statistics' events"))
    erased_at: datetime
    counts: dict[str, int] = Field(description=(
        "rows deleted, blanked or pseudonymised, per table"))
