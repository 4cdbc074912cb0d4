"""A guide's WeCom remark (备注) and description (描述) of a customer they follow.

Set from the chat sidebar: WeCom first (externalcontact/remark), then the relation's copy, so a
refusal stores nothing. WeCom raises no edit_external_contact for an API edit (FACTS §1.1), so
the copy is written here. Remarks a guide sets in the WeCom client arrive with the next profile
fetch (externalcontact/get, every follow_user page) or the daily tag sweep
(batch/get_by_user). WeCom's own length limits are not known here (not confirmed): guidebot
bounds them at its columns' sizes.
"""

from __future__ import annotations

import logging

from guidebot.db.engine import Database
from guidebot.db.models import DESCRIPTION_MAX, REMARK_MAX
from guidebot.db.repo import contacts as repo
from guidebot.errors import ValidationFailed
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)


def parse(remark: object, description: object) -> tuple[str, str]:
    """The remark and description as sent (empty clears), or ValidationFailed (coded, so the
    sidebar and the console word it)."""
    return (_text(remark, REMARK_MAX,
                  ValidationFailed("remark: a string", code="remark.type"),
                  ValidationFailed(f"remark: at most {REMARK_MAX} characters",
                                   code="remark.long", most=REMARK_MAX)),
            _text(description, DESCRIPTION_MAX,
                  ValidationFailed("description: a string", code="description.type"),
                  ValidationFailed(f"description: at most {DESCRIPTION_MAX} characters",
                                   code="description.long", most=DESCRIPTION_MAX)))


def _text(value: object, bound: int, not_text: ValidationFailed,
          too_long: ValidationFailed) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise not_text
    value = value.strip()
    if len(value) > bound:
        raise too_long
    return value


async def set_remark(db: Database, client: WeComClient, tenant: str, guide: str,
                     external_userid: str, remark: object, description: object) -> None:
    """WeCom's remark call, then the stored copy; WeComError (nothing stored) propagates."""
    text, about = parse(remark, description)
    await client.remark(userid=guide, external_userid=external_userid, remark=text,
                        description=about)
    async with db.write() as s:
        await repo.set_remarks(s, tenant=tenant, rows=[(guide, external_userid, text, about)])
    log.info("remark set tenant=%s guide=%s customer=%s", tenant, guide, external_userid)
