"""Checking SOP and drop files: every problem with its file and line (DESIGN §5.5)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from guidebot.content import sop_planner as planner
from guidebot.content.errors import Problem
from guidebot.content.sop_cron import parse_cron
from guidebot.content.sop_spec import (
    AUDIENCE_KEYS,
    BIRTHDAY_TRIGGER,
    CHANNELS,
    CONSOLE_DROP_PREFIX,
    DEFAULT_QUIET,
    DROP_CHANNELS,
    DROP_KEYS,
    EXITS,
    GROUP_AUDIENCE_KEYS,
    GROUP_CHANNEL,
    GROUP_EXIT,
    GROUP_TRIGGER,
    ID_PATTERN,
    MATERIAL_MESSAGE,
    MAX_DAYS_BEFORE,
    MAX_NO_PURCHASE_DAYS,
    NO_PURCHASE_SINCE,
    NO_PURCHASE_TRIGGER,
    REACH_TRIGGERS,
    REACHES,
    SOP_KEYS,
    STEP_KEYS,
    STORED_MATERIAL_CHANNELS,
    TRIGGER_KEYS,
    TRIGGERS,
    Audience,
    DropSpec,
    SopSpec,
    Step,
    Trigger,
    is_material_id,
)


class _Located:
    """Problems for one file, with lines found inside the right [[steps]] block."""

    def __init__(self, path: Path, text: str, problems: list[Problem]) -> None:
        self.path, self.lines, self.problems = path, text.splitlines(), problems
        self.count = len(problems)

    def block(self, header: str, index: int) -> tuple[int, int]:
        starts = [n for n, line in enumerate(self.lines) if line.strip() == header]
        if index >= len(starts):
            return 0, len(self.lines)
        end = next((n for n in range(starts[index] + 1, len(self.lines))
                    if self.lines[n].strip().startswith("[")), len(self.lines))
        return starts[index], end

    def line(self, key: str, span: tuple[int, int] | None = None) -> int | None:
        start, end = span or (0, len(self.lines))
        for n in range(start, end):
            stripped = self.lines[n].strip()
            if stripped.startswith((f"{key} ", f"{key}=", f"[{key}]", f"[[{key}]]")):
                return n + 1
        return start + 1 if span else None

    def add(self, message: str, key: str | None = None,
            span: tuple[int, int] | None = None) -> None:
        self.problems.append(Problem(self.path, self.line(key, span) if key else None, message))

    @property
    def failed(self) -> bool:
        return len(self.problems) > self.count


def _names(loc: _Located, table: dict[str, Any], key: str,
           span: tuple[int, int] | None = None) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        loc.add(f"{key} must be an array of non-empty strings", key, span)
        return ()
    return tuple(value)


def _unknown(loc: _Located, table: dict[str, Any], known: set[str], where: str,
             span: tuple[int, int] | None = None) -> None:
    for key in table:
        if key not in known:
            loc.add(f"{where}unknown key {key!r}", key, span)


def _audience(loc: _Located, table: dict[str, Any], span: tuple[int, int] | None) -> Audience:
    return Audience(*(_names(loc, table, k, span) for k in
                      ("tags_any", "tags_all", "tags_none", "stores", "guides")))


def _table(loc: _Located, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        loc.add(f"{key} must be a table", key)
        return {}
    return value


def _header(loc: _Located, data: dict[str, Any], stem: str) -> tuple[str, str, bool]:
    ident = data.get("id", stem)
    if not isinstance(ident, str) or not ID_PATTERN.fullmatch(ident):
        loc.add("id: 1-48 of a-z 0-9 _ - (lower case)", "id")
        ident = stem
    elif ident != stem:
        loc.add(f"id {ident!r} must match the file name {stem!r}", "id")
    title = data.get("title", "")
    if not isinstance(title, str) or not title:
        loc.add("title: a non-empty string is required", "title")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        loc.add("enabled must be true or false", "enabled")
    return ident, str(title), enabled is True


def _trigger(loc: _Located, data: dict[str, Any]) -> Trigger:
    table = _table(loc, data, "trigger")
    span = loc.block("[trigger]", 0)
    _unknown(loc, table, TRIGGER_KEYS, "trigger: ", span)
    on = table.get("on")
    if on not in TRIGGERS:
        loc.add(f"trigger.on must be one of {', '.join(TRIGGERS)}", "on", span)
        on = "manual"
    prefix = table.get("state_prefix", "")
    if not isinstance(prefix, str) or len(prefix) > 30:
        loc.add("trigger.state_prefix: a string of at most 30 characters (WeCom's state)",
                "state_prefix", span)
        prefix = ""
    if on != "contact_added" and (prefix or table.get("campaigns")):
        loc.add("trigger: state_prefix and campaigns only apply to contact_added",
                "state_prefix" if prefix else "campaigns", span)
    if on == GROUP_TRIGGER:
        for key in ("tags_any", "tags_all", "tags_none"):
            if key in table:
                loc.add(f"trigger: {key} does not apply to {GROUP_TRIGGER} (customer groups "
                        "have no customer tags; choose them by stores and group_names)",
                        key, span)
    elif "group_names" in table:
        loc.add(f"trigger: group_names only applies to {GROUP_TRIGGER}", "group_names", span)
    return Trigger(on, prefix, _names(loc, table, "campaigns", span),
                   _audience(loc, {k: v for k, v in table.items()
                                   if k in ("tags_any", "tags_all", "tags_none", "stores")},
                             span),
                   _names(loc, table, "group_names", span), _days_before(loc, table, on, span),
                   _reach(loc, table, on, span), *_no_purchase(loc, table, on, span))


def _no_purchase(loc: _Located, table: dict[str, Any], on: str,
                 span: tuple[int, int]) -> tuple[int, str]:
    """A no_purchase trigger's days (1 to MAX_NO_PURCHASE_DAYS, required) and since
    (NO_PURCHASE_SINCE, "last_order" when not given); refused on any other trigger."""
    if on != NO_PURCHASE_TRIGGER:
        for key in ("days", "since"):
            if key in table:
                loc.add(f"trigger: {key} only applies to {NO_PURCHASE_TRIGGER}", key, span)
        return 0, ""
    days, since = table.get("days"), table.get("since", NO_PURCHASE_SINCE[0])
    if isinstance(days, bool) or not isinstance(days, int) \
            or not 1 <= days <= MAX_NO_PURCHASE_DAYS:
        loc.add(f"trigger.days: {NO_PURCHASE_TRIGGER} needs a whole number of days from 1 to "
                f"{MAX_NO_PURCHASE_DAYS}", "days" if "days" in table else "on", span)
        days = 0
    if since not in NO_PURCHASE_SINCE:
        loc.add(f"trigger.since must be one of {', '.join(NO_PURCHASE_SINCE)}", "since", span)
        since = NO_PURCHASE_SINCE[0]
    return int(days or 0), str(since)


def _reach(loc: _Located, table: dict[str, Any], on: str, span: tuple[int, int]) -> str:
    """Whom the trigger enrolls: each relation (default) or each customer once."""
    if "reach" not in table:
        return "relation"
    value = table["reach"]
    if value not in REACHES:
        loc.add(f"trigger.reach must be one of {', '.join(REACHES)}", "reach", span)
        return "relation"
    if on not in REACH_TRIGGERS:
        loc.add(f"trigger: reach only applies to {', '.join(REACH_TRIGGERS)} (a {on} SOP "
                + ("enrolls customer groups" if on == GROUP_TRIGGER
                   else "already reaches each customer once") + ")", "reach", span)
        return "relation"
    return str(value)


def _days_before(loc: _Located, table: dict[str, Any], on: str, span: tuple[int, int]) -> int:
    """A birthday trigger's days_before: a whole number of days, 0 to MAX_DAYS_BEFORE."""
    if "days_before" not in table:
        return 0
    value = table["days_before"]
    if on != BIRTHDAY_TRIGGER:
        loc.add(f"trigger: days_before only applies to {BIRTHDAY_TRIGGER}", "days_before", span)
        return 0
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 0 <= value <= MAX_DAYS_BEFORE:
        loc.add(f"trigger.days_before must be a whole number of days from 0 to "
                f"{MAX_DAYS_BEFORE}", "days_before", span)
        return 0
    return value


def _exits(loc: _Located, data: dict[str, Any]) -> tuple[str, ...]:
    table = _table(loc, data, "exit")
    span = loc.block("[exit]", 0)
    _unknown(loc, table, {"on"}, "exit: ", span)
    exits = _names(loc, table, "on", span)
    for item in exits:
        if item not in EXITS and not (item.startswith("tag_added:") and len(item) > 10):
            loc.add(f"exit {item!r}: expected order_paid, contact_deleted, tag_added:<tag> "
                    f"or {GROUP_EXIT}", "on", span)
    return exits


def _step(loc: _Located, raw: Any, index: int, messages: set[str], trigger: str) -> Step | None:
    span = loc.block("[[steps]]", index)
    if not isinstance(raw, dict):
        loc.add(f"steps[{index}] must be a table", "steps")
        return None
    _unknown(loc, raw, STEP_KEYS, f"steps[{index}]: ", span)
    at, channel = raw.get("at"), raw.get("channel")
    message = _message_or_material(loc, raw, messages, f"steps[{index}].", span,
                                   stored=channel in STORED_MATERIAL_CHANNELS)
    try:
        offset = planner.parse_offset(at if isinstance(at, str) else "")
    except ValueError as exc:
        loc.add(f"steps[{index}].at: {exc}", "at", span)
        offset = None
    if channel not in CHANNELS:
        loc.add(f"steps[{index}].channel must be one of {', '.join(CHANNELS)}", "channel", span)
    if channel == "welcome":
        _welcome_rules(loc, index, offset, trigger, span)
    step = Step(str(at), str(channel), str(message), _names(loc, raw, "add_tags", span),
                _names(loc, raw, "remove_tags", span))
    return step


def _message_or_material(loc: _Located, raw: dict[str, Any], messages: set[str], where: str,
                         span: tuple[int, int] | None = None, *, stored: bool = True) -> str:
    """The message id a step or drop sends: `message`, or `material`, sent as the message
    "material:<id>". A material of content_library/materials/ is known here; any other
    well-formed id may name a material stored in the database (a guide's contribution or one
    HQ added in the console), which cannot be known when files load: whether it exists and is
    approved is checked when the task is sent (a task naming a missing, unapproved or
    withdrawn one fails with that reason). `stored` is False where only library materials
    can be sent (welcome and reminder steps)."""
    if "material" in raw:
        material = raw["material"]
        if "message" in raw:
            loc.add(f"{where}material: give message or material, not both", "material", span)
        known = isinstance(material, str) and MATERIAL_MESSAGE + material in messages
        if not known and not (stored and is_material_id(material)):
            loc.add(f"{where}material: unknown material id {material!r} (HQ materials of "
                    "content_library/materials/"
                    + ("; or a stored material's id: lowercase letters, digits, _ and -)"
                       if stored else "; this channel sends only those)"),
                    "material", span)
        return MATERIAL_MESSAGE + str(material)
    message = raw.get("message")
    if not isinstance(message, str) or message not in messages:
        loc.add(f"{where}message: unknown message id {message!r}", "message", span)
    return str(message)


def _welcome_rules(loc: _Located, index: int, offset: planner.Offset | None, trigger: str,
                   span: tuple[int, int]) -> None:
    """WeCom takes a welcome only with the add's WelcomeCode, within 20 s (FACTS §3.6)."""
    if trigger != "contact_added":
        loc.add(f"steps[{index}]: a welcome step needs trigger contact_added", "channel", span)
    if index != 0 or offset is None or offset.delta is None or offset.delta.total_seconds():
        loc.add(f"steps[{index}]: impossible schedule — a welcome must be the first step at "
                '"+0m" (WeCom accepts it only within 20 s of the add)', "at", span)


def parse_sop(path: Path, data: dict[str, Any], text: str, messages: set[str],
              problems: list[Problem]) -> SopSpec | None:
    loc = _Located(path, text, problems)
    _unknown(loc, data, SOP_KEYS, "")
    ident, title, enabled = _header(loc, data, path.stem)
    trigger = _trigger(loc, data)
    exits = _exits(loc, data)
    quiet = data.get("quiet_hours", DEFAULT_QUIET)
    try:
        planner.parse_quiet(quiet if isinstance(quiet, str) else "")
    except ValueError as exc:
        loc.add(f"quiet_hours: {exc}", "quiet_hours")
    on_quota = data.get("on_quota", "defer")
    if on_quota not in ("defer", "skip"):
        loc.add('on_quota must be "defer" or "skip"', "on_quota")
    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        loc.add("steps: at least one [[steps]] table is required", "steps")
        raw_steps = []
    steps = [_step(loc, raw, i, messages, trigger.on) for i, raw in enumerate(raw_steps)]
    _order(loc, steps)
    _group_rules(loc, trigger.on, exits, steps)
    if trigger.on == NO_PURCHASE_TRIGGER and "order_paid" not in exits:
        loc.add(f"exit.on: a {NO_PURCHASE_TRIGGER} SOP must exit on order_paid (a customer "
                'who buys is no longer dormant): add exit.on = ["order_paid"]',
                "on" if "exit" in data else "trigger", loc.block("[exit]", 0)
                if "exit" in data else None)
    if loc.failed:
        return None
    return SopSpec(ident, title, enabled, trigger, exits, tuple(s for s in steps if s),
                   str(quiet), str(on_quota), path)


def _group_rules(loc: _Located, on: str, exits: tuple[str, ...],
                 steps: list[Step | None]) -> None:
    """A group SOP sends only 群发 to its group (group_task, no customer tags) and ends only
    with the group; a customer SOP has no group steps or exits."""
    span = loc.block("[exit]", 0)
    for item in exits:
        if (item == GROUP_EXIT) != (on == GROUP_TRIGGER):
            loc.add(f"exit {item!r}: " + (f"a {GROUP_TRIGGER} SOP ends only with "
                                          f"{GROUP_EXIT}" if on == GROUP_TRIGGER else
                                          f"{GROUP_EXIT} only ends a {GROUP_TRIGGER} SOP"),
                    "on", span)
    for index, step in enumerate(steps):
        if step is None:
            continue
        where = loc.block("[[steps]]", index)
        if (step.channel == GROUP_CHANNEL) != (on == GROUP_TRIGGER):
            loc.add(f"steps[{index}].channel: " + (
                f"a {GROUP_TRIGGER} SOP's steps are {GROUP_CHANNEL} (a 群发 to the group)"
                if on == GROUP_TRIGGER else
                f"{GROUP_CHANNEL} is for {GROUP_TRIGGER} SOPs"), "channel", where)
        if on == GROUP_TRIGGER and (step.add_tags or step.remove_tags):
            loc.add(f"steps[{index}]: add_tags and remove_tags do not apply to groups",
                    "add_tags" if step.add_tags else "remove_tags", where)


def _order(loc: _Located, steps: list[Step | None]) -> None:
    """Steps must not go back in time: "day 1 at 10:00" after "+3d" is impossible."""
    last: tuple[float, str] | None = None
    for index, step in enumerate(steps):
        if step is None:
            continue
        try:
            offset = planner.parse_offset(step.at)
        except ValueError:
            continue
        latest = _latest_seconds(offset)
        earliest = _earliest_seconds(offset)
        if last is not None and latest < last[0]:
            loc.add(f"steps[{index}]: impossible schedule — {step.at!r} always comes before "
                    f"the previous step {last[1]!r}", "at", loc.block("[[steps]]", index))
        last = (earliest, step.at)


def _latest_seconds(offset: planner.Offset) -> float:
    if offset.delta is not None:
        return offset.delta.total_seconds()
    assert offset.at is not None
    return offset.day * 86400 + offset.at.hour * 3600 + offset.at.minute * 60


def _earliest_seconds(offset: planner.Offset) -> float:
    if offset.delta is not None:
        return offset.delta.total_seconds()
    assert offset.at is not None
    return max(0.0, (offset.day - 1) * 86400 + offset.at.hour * 3600 + offset.at.minute * 60)


def parse_drop(path: Path, data: dict[str, Any], text: str, messages: set[str],
               problems: list[Problem], *, console: bool = False) -> DropSpec | None:
    """A drop file's drop; with `console`, one HQ created (新建群发, named hq-<n>)."""
    loc = _Located(path, text, problems)
    _unknown(loc, data, DROP_KEYS, "")
    ident, title, enabled = _header(loc, data, path.stem)
    if ident.startswith(CONSOLE_DROP_PREFIX) != console:
        loc.add(f"id: {CONSOLE_DROP_PREFIX}<n> names the drops created in the console; a "
                "drop file takes another id", "id")
    cron, at = data.get("cron", ""), data.get("at", "")
    if bool(cron) == bool(at):
        loc.add("give exactly one of cron or at", "cron" if cron else "at")
    if cron:
        try:
            parse_cron(str(cron))
        except ValueError as exc:
            loc.add(f"cron: {exc}", "cron")
    if at:
        _drop_at(loc, at)
    table = _table(loc, data, "audience")
    span = loc.block("[audience]", 0)
    channel = data.get("channel")
    to_groups = channel == GROUP_CHANNEL
    _unknown(loc, table, AUDIENCE_KEYS | GROUP_AUDIENCE_KEYS, "audience: ", span)
    if to_groups:
        for key in sorted(set(table) & (AUDIENCE_KEYS - GROUP_AUDIENCE_KEYS)):
            loc.add(f"audience: {key} does not apply to channel {GROUP_CHANNEL} (customer "
                    "groups have no customer tags; choose them by stores, guides (the "
                    "group's owner) and group_names)", key, span)
    elif "group_names" in table:
        loc.add(f"audience: group_names is for channel {GROUP_CHANNEL} only",
                "group_names", span)
    audience = _audience(loc, table, span)
    group_names = _names(loc, table, "group_names", span) if to_groups else ()
    message = _message_or_material(loc, data, messages, "")
    if channel not in DROP_CHANNELS:
        loc.add(f"channel must be one of {', '.join(DROP_CHANNELS)}", "channel")
    if loc.failed:
        return None
    return DropSpec(ident, title, enabled, str(cron), str(at), audience, str(channel),
                    str(message), path, group_names)


def _drop_at(loc: _Located, at: Any) -> None:
    if isinstance(at, datetime):
        when = at
    else:
        try:
            when = datetime.fromisoformat(str(at))
        except ValueError:
            loc.add("at: an ISO 8601 time with offset, like 2026-11-10T10:00:00+08:00", "at")
            return
    if when.tzinfo is None:
        loc.add("at: give a UTC offset (e.g. +08:00)", "at")
