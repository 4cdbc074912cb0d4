"""客户动态: one customer's latest interactions, newest first, for the sidebar, the console's
customer page and the admin API.

Seven sources, each read once with a LIMIT (db/repo/timeline.py) and merged here: the follow
relation's history (added, deleted, transferred…), card opens (tracked visits, the sku named
from the catalog), orders with the guide they were credited to, their refunds (the amount
refunded, with the order's guide), SOP steps sent to the
customer (the SOP's title from content_library), group joins and leaves, the guides'
follow-up notes (跟进记录: that a note was written and by whom, never its text) and the
customer's profile fields (客户资料: which field was last set, when and by whom — a guide, or
HQ with no guide — for each field of profile_fields.toml that has a value; not the value,
which the 客户资料 block beside it shows; only the latest setting is kept). Each event is
{at (UTC ISO), kind, guide, guide_name, ...details}; no message text, ever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from guidebot.contacts.views import require_known
from guidebot.content.catalog import Catalog
from guidebot.content.library import Library
from guidebot.db.engine import Database
from guidebot.db.models_profile import HQ
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import notes as notes_repo
from guidebot.db.repo import profile_fields as fields_repo
from guidebot.db.repo import timeline as repo
from guidebot.settings import TenantSettings

DEFAULT_LIMIT = 30
MAX_LIMIT = 100
# Events at the same instant, in the order they usually happen (a newer one listed first)
KINDS = ("field", "note", "follow", "sop_step", "group_join", "group_leave", "card_open",
         "order", "refund")


def _event(at: datetime, kind: str, guide: str | None, **details: Any) -> dict[str, Any]:
    return {"at": at.isoformat(), "kind": kind, "guide": guide or None, **details}


async def customer_timeline(db: Database, tenant: TenantSettings, external_userid: str, *,
                            library: Library, catalog: Catalog,
                            limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """The customer's latest `limit` events (1–100), newest first; NotFound naming
    external_userid for a customer this tenant does not know."""
    limit = max(1, min(limit, MAX_LIMIT))
    await require_known(db, tenant.id, external_userid=external_userid)
    tid, c = tenant.id, external_userid
    async with db.read() as s:
        follows = await repo.follow_events(s, tenant=tid, external_userid=c, limit=limit)
        visits = await repo.visits(s, tenant=tid, external_userid=c, limit=limit)
        orders = await repo.orders(s, tenant=tid, external_userid=c, limit=limit)
        refunds = await repo.refunds(s, tenant=tid, external_userid=c, limit=limit)
        steps = await repo.sent_steps(s, tenant=tid, external_userid=c, limit=limit)
        groups = await repo.memberships(s, tenant=tid, external_userid=c, limit=limit)
        notes = await notes_repo.of_customer(s, tenant=tid, external_userid=c, limit=limit)
        values = await fields_repo.of_customer(s, tenant=tid, external_userid=c)
        events: list[dict[str, Any]] = []
        for f in follows:
            extra = {"from_guide": f.detail} if f.action == "transferred_in" and f.detail else {}
            events.append(_event(f.at, "follow", f.guide, action=f.action, **extra))
        for t in visits:
            product = catalog.get(t.sku)
            events.append(_event(t.at, "card_open", t.guide, sku=t.sku or None,
                                 product=product.name if product else (t.sku or None),
                                 dur_s=t.dur_s))
        for o in orders:
            events.append(_event(o.paid_at, "order", o.guide, order_no=o.order_no,
                                 amount_fen=o.amount_fen, rule=o.rule,
                                 store=o.credited_store or o.store_id))
        for refund, order in refunds:
            events.append(_event(refund.refunded_at, "refund", order.guide,
                                 order_no=order.order_no, refund_no=refund.refund_no,
                                 amount_fen=refund.amount_fen))
        for step in steps:
            spec = library.sops.get(step.sop_id)
            events.append(_event(step.due_at, "sop_step", step.guide, sop_id=step.sop_id,
                                 sop_title=spec.title if spec is not None else step.sop_id,
                                 step=step.step_index + 1, channel=step.channel))
        for group, member in groups:
            name = {"chat_id": group.chat_id, "group_name": group.name or None}
            if member.joined_at is not None:
                events.append(_event(member.joined_at, "group_join", group.owner, **name))
            if member.left_at is not None:
                events.append(_event(member.left_at, "group_leave", group.owner, **name))
        for note in notes:
            events.append(_event(note.created_at, "note", note.guide, note_id=note.id))
        labels = {f.id: f.label for f in library.profile_fields}
        for value in values:
            if value.field in labels:  # a field removed from the file: not shown
                events.append(_event(value.set_at, "field",
                                     None if value.set_by == HQ else value.set_by,
                                     field=value.field, field_label=labels[value.field],
                                     set_by=value.set_by))
        events.sort(key=lambda e: (datetime.fromisoformat(e["at"]), KINDS.index(e["kind"])),
                    reverse=True)
        events = events[:limit]
        userids = sorted({e["guide"] for e in events if e["guide"]}
                         | {e["from_guide"] for e in events if e.get("from_guide")})
        names = await contacts_repo.guide_names(s, tenant=tenant.id, userids=userids)
    for e in events:
        e["guide_name"] = (names[e["guide"]][0] or e["guide"]) if e["guide"] else None
    return events


def shown_at(at: str, zone: ZoneInfo) -> str:
    """An event's time as the sidebar shows it: MM-DD HH:MM in the tenant's time zone."""
    return datetime.fromisoformat(at).astimezone(zone).strftime("%m-%d %H:%M")
