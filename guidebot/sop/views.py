"""Read models of SOPs and tasks for the admin API (DESIGN §5.3)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from guidebot.content.sop_spec import BIRTHDAY_TRIGGER, NO_PURCHASE_TRIGGER
from guidebot.db.engine import Database
from guidebot.db.repo import sop_plan as plan_repo
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.errors import NotFound, ValidationFailed
from guidebot.outbox import next_try_at
from guidebot.settings import TenantSettings
from guidebot.sop import timing
from guidebot.sop.versions import Current
from guidebot.stats import cursor


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def parse_added_at(raw: str | None, tenant: TenantSettings) -> datetime:
    """ISO 8601; a '+' offset that a query string turned into a space is put back; a time
    without offset is read in the tenant's zone."""
    if not raw:
        raise ValidationFailed("added_at: required ISO 8601 time, like 2026-11-20T15:00:00+08:00",
                               code="added_at.required")
    text = raw.strip().replace(" ", "+") if "T" in raw else raw.strip()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"added_at: {raw!r} is not an ISO 8601 time",
                               code="added_at.invalid", value=raw) from None
    if not 2000 <= at.year <= 2100:
        raise ValidationFailed("added_at: must be within the years 2000–2100",
                               code="added_at.years")
    return at.replace(tzinfo=tenant.tz) if at.tzinfo is None else at


async def sops_view(db: Database, tenant: TenantSettings,
                    currents: dict[str, Current]) -> dict[str, Any]:
    async with db.read() as s:
        counts = await plan_repo.enrollment_counts(s, tenant=tenant.id)
    return {"sops": [{
        "id": sop_id, "title": c.spec.title, "enabled": c.enabled, "version": c.version,
        "switched_off": c.switched_off,
        "trigger": {"on": c.spec.trigger.on, "state_prefix": c.spec.trigger.state_prefix or None,
                    "campaigns": list(c.spec.trigger.campaigns),
                    "tags_any": list(c.spec.trigger.audience.tags_any),
                    "tags_all": list(c.spec.trigger.audience.tags_all),
                    "tags_none": list(c.spec.trigger.audience.tags_none),
                    "group_names": list(c.spec.trigger.group_names),
                    "reach": c.spec.trigger.reach,
                    **({"days_before": c.spec.trigger.days_before}
                       if c.spec.trigger.on == BIRTHDAY_TRIGGER else {}),
                    **({"days": c.spec.trigger.days, "since": c.spec.trigger.since}
                       if c.spec.trigger.on == NO_PURCHASE_TRIGGER else {})},
        "exit": list(c.spec.exits), "quiet_hours": c.spec.quiet_hours,
        "on_quota": c.spec.on_quota,
        "steps": [{"index": i, "at": st.at, "channel": st.channel, "message": st.message}
                  for i, st in enumerate(c.spec.steps)],
        "enrollments": counts.get(sop_id, {}),
    } for sop_id, c in sorted(currents.items())]}


def preview_view(current: Current | None, sop_id: str, tenant: TenantSettings,
                 added_at: datetime) -> dict[str, Any]:
    if current is None:
        raise NotFound(f"sop_id: SOP {sop_id!r} not found", code="sop.unknown", sop_id=sop_id)
    return {"sop": sop_id, "version": current.version, "timezone": tenant.timezone,
            "added_at": added_at.astimezone(tenant.tz).isoformat(),
            "steps": timing.preview(current.spec, added_at, tenant)}


def _task_cursor(after: str) -> int | None:
    """The task id a `next` cursor names (the last task of the page before), or None."""
    if not after:
        return None
    _, key = cursor.decode(after)
    if not key.isdigit():
        raise ValidationFailed("after: not a cursor this list gave", code="list.bad_cursor")
    return int(key)


async def tasks_view(db: Database, tenant: TenantSettings, guide: str | None,
                     status: str | None, *, limit: int = 200,
                     after: str = "") -> dict[str, Any]:
    """Up to `limit` tasks, newest first, after the cursor when one is given; `next` is the
    cursor of the page after (None on the last)."""
    before_id = _task_cursor(after)
    async with db.read() as s:
        rows = await tasks_repo.list_tasks(s, tenant=tenant.id, guide=guide, status=status,
                                           limit=limit + 1, before_id=before_id)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if more and rows else None
    return {"next": cursor.encode(last.created_at, str(last.id)) if last else None,
            "tasks": [{
        "id": t.id, "kind": t.kind, "source": t.source, "version": t.version,
        "step": t.step_index, "guide": t.guide, "message": t.message,
        "recipients": t.recipients, "status": t.status, "msgid": t.msgid or None,
        "confirmed": t.confirmed, "reminders": t.reminders,
        "created_at": _iso(t.created_at), "updated_at": _iso(t.updated_at),
        "note": t.last_error or None,
        "delivery": ({"status": o.status, "attempts": o.attempts,
                      "last_error": o.last_error or None,
                      "next_try_at": _iso(next_try_at(o.status, o.due_at))}
                     if o is not None else None),
        "detail": _detail(t.detail),
    } for t, o in rows]}


def _detail(raw: str) -> dict[str, Any]:
    data = json.loads(raw) if raw else {}
    data.pop("customers", None)  # drops list their audience: too long for a listing
    data.pop("groups", None)  # a group task's chat ids: likewise (its page lists them)
    return data


def conversion_view(current: Current | None, sop_id: str,
                    counts: dict[tuple[str, int], dict[str, int]]) -> list[dict[str, Any]]:
    """Each step of the SOP with what it did: customers sent to, 群发 tasks and the customers
    the guides' confirmations reached, clicks on its tracked cards (and distinct customers),
    orders through them and their GMV (fen)."""
    if current is None:
        raise NotFound(f"sop_id: SOP {sop_id!r} not found", code="sop.unknown", sop_id=sop_id)
    names = ("sent", "tasks", "confirmed", "clicks", "clickers", "orders", "gmv_fen")
    return [{"index": i, "at": st.at, "channel": st.channel, "message": st.message,
             **{n: counts.get((sop_id, i), {}).get(n, 0) for n in names}}
            for i, st in enumerate(current.spec.steps)]
