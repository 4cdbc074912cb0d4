"""跟进记录: a guide's follow-up notes about a customer they follow.

A note is text (1–500 characters once trimmed) and an optional follow-up day (the tenant's
calendar day, YYYY-MM-DD). Written from the chat sidebar by the guide (SidebarService checks
that they follow the customer); read by every guide of the tenant in the sidebar, by HQ on the
console's customer page and through the admin API. The text is customer data: it is never
logged (the note's id is), and the timeline (客户动态) only says that a note was written.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from guidebot.contacts.views import require_known
from guidebot.db.engine import Database
from guidebot.db.models_notes import MAX_NOTE_CHARS, CustomerNote
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import notes as repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.settings import TenantSettings

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def parse(text: object, follow_up_on: object) -> tuple[str, date | None]:
    """The note's text and follow-up day as the guide sent them, or ValidationFailed."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("text: required, the note's text", code="note.text_empty")
    text = text.strip()
    if len(text) > MAX_NOTE_CHARS:
        raise ValidationFailed(f"text: at most {MAX_NOTE_CHARS} characters",
                               code="note.text_long", most=MAX_NOTE_CHARS)
    if follow_up_on in (None, ""):
        return text, None
    if not isinstance(follow_up_on, str):
        raise ValidationFailed("follow_up_on: a date YYYY-MM-DD", code="note.date")
    try:
        day = date.fromisoformat(follow_up_on)
    except ValueError:
        raise ValidationFailed("follow_up_on: a date YYYY-MM-DD", code="note.date") from None
    if len(follow_up_on) != 10:
        raise ValidationFailed("follow_up_on: a date YYYY-MM-DD", code="note.date")
    return text, day


async def add(db: Database, tenant: TenantSettings, guide: str, external_userid: str,
              text: object, follow_up_on: object) -> int:
    """Store the guide's note (the caller checked the relation); its id."""
    body, day = parse(text, follow_up_on)
    async with db.write() as s:
        note = await repo.add(s, tenant=tenant.id, external_userid=external_userid,
                              guide=guide, text=body, follow_up_on=day, now=utcnow())
        note_id = int(note.id or 0)
    log.info("note written tenant=%s guide=%s customer=%s note=%s", tenant.id, guide,
             external_userid, note_id)
    return note_id


async def of_customer(db: Database, tenant: TenantSettings, external_userid: str, *,
                      limit: int = DEFAULT_LIMIT,
                      before: int | None = None) -> list[dict[str, Any]]:
    """The customer's notes, newest first, with the guide's name and the tenant-local time
    (`when`); NotFound for a customer this tenant does not know."""
    await require_known(db, tenant.id, external_userid=external_userid)
    async with db.read() as s:
        rows = await repo.of_customer(s, tenant=tenant.id, external_userid=external_userid,
                                      limit=limit, before=before)
        names = await contacts_repo.guide_names(s, tenant=tenant.id,
                                                userids=sorted({r.guide for r in rows}))
    return [shown(r, names[r.guide][0], tenant) for r in rows]


def shown(note: CustomerNote, guide_name: str, tenant: TenantSettings) -> dict[str, Any]:
    return {"id": note.id, "guide": note.guide, "guide_name": guide_name or note.guide,
            "text": note.text,
            "follow_up_on": note.follow_up_on.isoformat() if note.follow_up_on else None,
            "at": note.created_at.isoformat(),
            "when": note.created_at.astimezone(tenant.tz).strftime("%Y-%m-%d %H:%M")}
