"""Drops HQ creates in the console or the admin API (新建群发): a one-off 群发 of one tenant,
checked by the same rules as a drop file (the dict its TOML would give goes through
parse_drop), stored in the database and fired by the scheduled run like a file's drop; one
not fired yet can be cancelled."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.content.errors import Problem
from guidebot.content.library import MOMENT_ATTACHMENTS, Library
from guidebot.content.sop_spec import (
    CONSOLE_DROP_PREFIX,
    GROUP_CHANNEL,
    MATERIAL_MESSAGE,
    Audience,
    DropSpec,
)
from guidebot.content.sop_validate import parse_drop
from guidebot.db.engine import Database
from guidebot.db.models_drops import TenantDrop
from guidebot.db.repo import segments as segments_repo
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.repo import tenant_drops as repo
from guidebot.errors import NotFound, StateConflict, ValidationFailed
from guidebot.settings import TenantSettings
from guidebot.sop import drops

log = logging.getLogger(__name__)

NOW = "now"
PAST_GRACE = timedelta(minutes=5)  # a time this far back still counts as "now"
LISTED = 200  # the tenant's newest drops listed
AUDIENCE_ORDER = ("stores", "guides", "tags_any", "tags_all", "tags_none", "group_names")


@dataclass(frozen=True)
class Draft:
    """What HQ fills in: `at` is "now" (send at once) or an ISO time with its offset;
    `message` (a library message id) or `material` (a material id); the audience's lists."""

    title: str
    channel: str
    at: str
    message: str | None = None
    material: str | None = None
    audience: Mapping[str, Sequence[str]] = field(default_factory=dict)
    operator: str = ""
    segment: int | None = None  # a saved customer segment, resolved when the drop fires


@dataclass(frozen=True)
class Created:
    drop: dict[str, Any]
    firing: str = ""  # when sent now: the firing its tasks were made under
    tasks: int = 0


def source_of(draft: Draft, drop_id: str, at: str) -> dict[str, Any]:
    """The dict a drop file's TOML would give for this draft (empty lists left out)."""
    data: dict[str, Any] = {"id": drop_id, "title": draft.title, "at": at,
                            "channel": draft.channel}
    if draft.message is not None:
        data["message"] = draft.message
    if draft.material is not None:
        data["material"] = draft.material
    audience: dict[str, Any] = {k: list(v) for k, v in draft.audience.items() if v}
    if draft.segment is not None:
        audience["segment"] = draft.segment
    if audience:
        data["audience"] = audience
    return data


def _text(data: Mapping[str, Any]) -> tuple[str, dict[int, str]]:
    """A TOML-like text with one key a line, so that each problem's line names its field."""
    lines, fields = [], {}
    for key, value in data.items():
        if key == "audience":
            continue
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        fields[len(lines)] = key
    lines.append("[audience]")
    fields[len(lines)] = "audience"
    for key, value in dict(data.get("audience", {})).items():
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        fields[len(lines)] = f"audience.{key}"
    return "\n".join(lines), fields


def checked(data: dict[str, Any], library: Library) -> DropSpec:
    """The drop of this dict under a drop file's rules, else ValidationFailed naming the
    field ("audience.tags_any: …"). A segment is checked by the caller (it is the tenant's)."""
    segment = dict(data.get("audience", {})).get("segment")
    if segment is not None:
        if data.get("channel") == GROUP_CHANNEL:
            raise ValidationFailed(f"audience.segment: a segment is of customers, not for "
                                   f"channel {GROUP_CHANNEL}", code="drop.invalid",
                                   field="audience.segment",
                                   reason=f"a segment is of customers, not {GROUP_CHANNEL}")
        data = {**data, "audience": {k: v for k, v in data["audience"].items()
                                     if k != "segment"}}
    text, fields = _text(data)
    problems: list[Problem] = []
    spec = parse_drop(Path(f"{data['id']}.toml"), data, text, set(library.messages), problems,
                      console=True)
    if problems:
        first = problems[0]
        name = fields.get(first.line or 0) or first.message.split(":", 1)[0].split(" ")[0]
        reason = first.message.removeprefix(f"{name}:").removeprefix("audience: ").strip()
        raise ValidationFailed(f"{name}: {reason}", code="drop.invalid", field=name,
                               reason=reason)
    assert spec is not None
    message = library.messages.get(spec.message)
    if spec.channel == "moment" and message is not None:
        unfit = sorted({a["type"] for a in message.attachments} - MOMENT_ATTACHMENTS)
        if unfit:
            name = "material" if spec.message.startswith(MATERIAL_MESSAGE) else "message"
            reason = (f"a moment cannot carry {', '.join(unfit)} attachments (only image, "
                      "video or link)")
            raise ValidationFailed(f"{name}: {reason}", code="drop.invalid", field=name,
                                   reason=reason)
    return spec if segment is None else replace(
        spec, audience=replace(spec.audience, segment=int(segment)))


def spec_of(row: TenantDrop) -> DropSpec:
    """A stored drop's spec (checked when it was created; not again: a library message
    removed since fails its tasks with that reason, as a file drop's would)."""
    data = json.loads(row.spec)
    message = (MATERIAL_MESSAGE + data["material"] if "material" in data
               else str(data.get("message", "")))
    audience = data.get("audience", {})
    return DropSpec(
        id=row.drop_id, title=data["title"], enabled=True, cron="", at=data["at"],
        audience=Audience(*(tuple(audience.get(k, ())) for k in
                            ("tags_any", "tags_all", "tags_none", "stores", "guides")),
                          segment=audience.get("segment")),
        channel=data["channel"], message=message, file=Path(f"{row.drop_id}.toml"),
        group_names=tuple(audience.get("group_names", ())))


def state_of(row: TenantDrop, cursor: str, now: datetime) -> str:
    if row.cancelled_at is not None:
        return "cancelled"
    if cursor:
        return "fired"
    return "missed" if now >= row.at + drops.LATE_LIMIT else "scheduled"


def _next_id(taken: set[str], library: Library) -> str:
    numbers = [int(i.removeprefix(CONSOLE_DROP_PREFIX)) for i in taken
               if i.removeprefix(CONSOLE_DROP_PREFIX).isdigit()]
    n = max(numbers, default=0) + 1
    while f"{CONSOLE_DROP_PREFIX}{n}" in library.drops:  # a file may not take one; still
        n += 1
    return f"{CONSOLE_DROP_PREFIX}{n}"


def _cursor(drop_id: str) -> str:
    return f"drop:{drop_id}"


class TenantDrops:
    def __init__(self, db: Database, library: Library, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._library = library
        self._clock = clock

    def _at(self, raw: str, now: datetime) -> str:
        """"now" as the time now (UTC, to the second); a given time as given, refused when
        it has passed (parse_drop judges its form)."""
        if raw.strip().lower() == NOW:
            return now.astimezone(UTC).replace(microsecond=0).isoformat()
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            return raw
        if when.tzinfo is not None and when < now - PAST_GRACE:
            raise ValidationFailed("at: that time has passed; give a later time, or now",
                                   code="drop.at_past")
        return raw

    async def create(self, tenant: TenantSettings, draft: Draft) -> Created:
        """Check and store the drop; with at "now", fire it at once (its scheduled firing,
        claimed first so that the scheduled run does not make it again)."""
        now = self._clock()
        at = self._at(draft.at, now)
        spec = checked(source_of(draft, f"{CONSOLE_DROP_PREFIX}0", at), self._library)
        if draft.segment is not None:
            async with self._db.read() as s:
                known = await segments_repo.get(s, tenant=tenant.id, segment_id=draft.segment)
            if known is None:
                reason = f"no segment {draft.segment} in this brand"
                raise ValidationFailed(f"audience.segment: {reason}", code="drop.invalid",
                                       field="audience.segment", reason=reason)
        when = datetime.fromisoformat(spec.at).astimezone(UTC)
        send_now = draft.at.strip().lower() == NOW
        for _ in range(5):
            async with self._db.write() as s:
                drop_id = _next_id(set(await repo.ids(s, tenant=tenant.id)), self._library)
                data = source_of(draft, drop_id, at)
                stored = await repo.insert(s, tenant=tenant.id, drop_id=drop_id,
                                           spec=json.dumps(data, ensure_ascii=False), at=when,
                                           operator=draft.operator[:64] or "console", now=now)
                if stored and send_now:
                    await tasks_repo.set_cursor(s, tenant=tenant.id, name=_cursor(drop_id),
                                                value=datetime.fromisoformat(at).isoformat())
            if stored:
                break
        else:
            raise ValidationFailed("title: too many drops created at once; try again",
                                   code="drop.busy")
        spec = checked(data, self._library)
        log.info("drop %s tenant=%s created by %s (%s)", drop_id, tenant.id,
                 draft.operator[:64] or "console", spec.channel)
        firing, queued = "", 0
        if send_now:
            firing = datetime.fromisoformat(spec.at).isoformat()
            queued = await drops.fire_at(self._db, tenant, spec, firing, clock=self._clock)
            log.info("drop %s tenant=%s sent at once: %s task(s)", drop_id, tenant.id, queued)
        return Created((await self.listed(tenant.id, only=drop_id))[0], firing, queued)

    async def live(self, tenant: str) -> dict[str, DropSpec]:
        """The tenant's drops a scheduled run may fire (not cancelled, not past LATE_LIMIT)."""
        async with self._db.read() as s:
            rows = await repo.live(s, tenant=tenant, since=self._clock() - drops.LATE_LIMIT)
        return {row.drop_id: spec_of(row) for row in rows}

    async def spec(self, tenant: str, drop_id: str) -> tuple[DropSpec, TenantDrop] | None:
        if not drop_id.startswith(CONSOLE_DROP_PREFIX):
            return None
        async with self._db.read() as s:
            row = await repo.get(s, tenant=tenant, drop_id=drop_id)
        return None if row is None else (spec_of(row), row)

    async def may_fire(self, s: AsyncSession, tenant: str, drop: DropSpec) -> bool:
        """In the scheduled firing's transaction: a drop created here fires unless it was
        cancelled or fired by hand meanwhile; its row stays locked until the firing is
        recorded, so a cancel waits for it (and is refused) or went first (nothing fires).
        A content library drop always may."""
        if drop.id in self._library.drops or not drop.id.startswith(CONSOLE_DROP_PREFIX):
            return True
        if not await repo.hold_live(s, tenant=tenant, drop_id=drop.id):
            return False
        return not await tasks_repo.get_cursor(s, tenant=tenant, name=_cursor(drop.id))

    async def claim(self, tenant: str, drop_id: str) -> None:
        """立即发送 of a drop not fired yet: its scheduled firing is taken (it is sent now
        instead of at its time); a cancel under way goes first, or waits and is refused."""
        async with self._db.write() as s:
            row = await repo.get(s, tenant=tenant, drop_id=drop_id)
            if row is None:
                return
            if not await repo.hold_live(s, tenant=tenant, drop_id=drop_id):
                raise ValidationFailed(f"drop_id: drop {drop_id!r} was cancelled",
                                       code="drop.cancelled", drop_id=drop_id)
            if not await tasks_repo.get_cursor(s, tenant=tenant, name=_cursor(drop_id)):
                await tasks_repo.set_cursor(s, tenant=tenant, name=_cursor(drop_id),
                                            value=spec_of(row).at)

    async def cancel(self, tenant: str, drop_id: str) -> dict[str, Any]:
        """A drop not fired yet never fires; one a firing claimed is refused (StateConflict,
        409: 停止群发 stops its tasks). Cancelling a cancelled drop again changes nothing."""
        if drop_id in self._library.drops:
            raise ValidationFailed(f"drop_id: {drop_id!r} is a content library drop (edit or "
                                   "remove its file)", code="drop.library", drop_id=drop_id)
        async with self._db.write() as s:
            row = await repo.get(s, tenant=tenant, drop_id=drop_id)
            if row is None:
                raise NotFound(f"drop_id: no drop {drop_id!r} created in the console",
                               code="drop.unknown", drop_id=drop_id)
            # the row first (a firing holding it makes this wait), then whether a firing
            # claimed the drop: then the cancel is undone and refused
            if await repo.cancel(s, tenant=tenant, drop_id=drop_id, now=self._clock()):
                if await tasks_repo.get_cursor(s, tenant=tenant, name=_cursor(drop_id)):
                    raise StateConflict(f"drop_id: drop {drop_id!r} has fired (its tasks are "
                                        "made); stop its 群发 instead (停止群发)",
                                        code="drop.fired", drop_id=drop_id)
                log.info("drop %s tenant=%s cancelled", drop_id, tenant)
        return (await self.listed(tenant, only=drop_id))[0]

    async def listed(self, tenant: str, *, only: str = "") -> list[dict[str, Any]]:
        """The tenant's drops, newest first, each with its state; `only` one of them."""
        async with self._db.read() as s:
            if only:
                one = await repo.get(s, tenant=tenant, drop_id=only)
                rows = [one] if one is not None else []
            else:
                rows = await repo.of_tenant(s, tenant=tenant, limit=LISTED)
            cursors = await repo.cursors(s, tenant=tenant,
                                         names=[_cursor(r.drop_id) for r in rows])
        now = self._clock()
        return [{**drop_row(spec_of(r)), "source": "console",
                 "state": state_of(r, cursors.get(_cursor(r.drop_id), ""), now),
                 "operator": r.operator, "created_at": r.created_at,
                 "cancelled_at": r.cancelled_at} for r in rows]

    async def library_states(self, tenant: str) -> dict[str, str]:
        """The content library's drops' states: disabled, recurring (cron), or for a one-off
        scheduled, fired or missed."""
        specs = self._library.drops
        async with self._db.read() as s:
            cursors = await repo.cursors(s, tenant=tenant, names=[_cursor(i) for i in specs])
        now, out = self._clock(), {}
        for drop_id, spec in specs.items():
            if not spec.enabled:
                out[drop_id] = "disabled"
            elif spec.cron:
                out[drop_id] = "recurring"
            elif cursors.get(_cursor(drop_id)):
                out[drop_id] = "fired"
            else:
                when = datetime.fromisoformat(spec.at)
                out[drop_id] = "missed" if now >= when + drops.LATE_LIMIT else "scheduled"
        return out


def drop_row(d: DropSpec) -> dict[str, Any]:
    """A drop as the API and the console list it."""
    return {"id": d.id, "title": d.title, "enabled": d.enabled, "cron": d.cron, "at": d.at,
            "channel": d.channel, "message": d.message,
            "stores": list(d.audience.stores), "guides": list(d.audience.guides),
            "tags_any": list(d.audience.tags_any), "tags_all": list(d.audience.tags_all),
            "tags_none": list(d.audience.tags_none), "group_names": list(d.group_names),
            "segment": d.audience.segment}

