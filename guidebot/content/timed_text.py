"""分时段欢迎语: a message's texts for times of day (and days of the week).

A message file may hold `[[hours]]` tables, each with `between = "21:00-09:00"` (the tenant's
time zone, wrapping midnight when the end comes first), optional `weekdays = [6, 7]` (ISO:
Monday is 1; the weekday of the local date at that moment) and the `text` sent instead of the
message's own at such a time. The first table that holds the moment wins; the message's
attachments go with every text. Only welcomes use them: they are chosen at the add's time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from guidebot.content.errors import Problem
from guidebot.content.render import TemplateSyntaxError, unknown_placeholders
from guidebot.content.sop_planner import QuietHours, parse_quiet

KEYS = {"between", "weekdays", "text"}
WEEKDAYS = range(1, 8)


@dataclass(frozen=True)
class TimedText:
    between: str
    window: QuietHours
    weekdays: frozenset[int]
    text: str

    def holds(self, local: datetime) -> bool:
        """Whether this text is the one at `local` (a time in the tenant's zone)."""
        return (local.isoweekday() in self.weekdays or not self.weekdays) \
            and self.window.contains(local.time())


def pick(texts: Sequence[TimedText], local: datetime) -> TimedText | None:
    """The first text whose hours hold `local`, or None (the message's own text)."""
    return next((t for t in texts if t.holds(local)), None)


def _table_lines(source: str, name: str) -> list[int]:
    """The line of each `[[name]]` header, in order."""
    return [number for number, line in enumerate(source.splitlines(), start=1)
            if line.strip().startswith(f"[[{name}]]")]


def parse_hours(path: Path, source: str, raw: Any, problems: list[Problem]) -> list[TimedText]:
    """The `[[hours]]` tables of a message file; each problem names the table's line."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        problems.append(Problem(path, None, "hours must be an array of tables ([[hours]])"))
        return []
    lines = _table_lines(source, "hours")
    found = []
    for index, table in enumerate(raw):
        line = lines[index] if index < len(lines) else None
        before = len(problems)
        for key in sorted(set(table) - KEYS):
            problems.append(Problem(path, line, f"hours: unknown key {key!r}"))
        between = table.get("between")
        window = None
        if not isinstance(between, str):
            problems.append(Problem(path, line, 'hours: between must be a text like '
                                                '"21:00-09:00"'))
        else:
            try:
                window = parse_quiet(between)
            except ValueError as exc:
                problems.append(Problem(path, line, f"hours: between {exc}"))
            else:
                if window.start == window.end:
                    problems.append(Problem(path, line, f"hours: between {between!r} holds no "
                                                        "time (start and end are equal)"))
        weekdays = table.get("weekdays", [])
        if (not isinstance(weekdays, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d in WEEKDAYS
                           for d in weekdays)):
            problems.append(Problem(path, line, "hours: weekdays must be numbers from 1 "
                                                "(Monday) to 7 (Sunday)"))
            weekdays = []
        text = table.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.append(Problem(path, line, "hours: text must be a non-empty string"))
            text = ""
        try:
            for name in unknown_placeholders(text):
                problems.append(Problem(path, line, f"hours: unknown placeholder {name!r}"))
        except TemplateSyntaxError as exc:
            problems.append(Problem(path, line, f"hours: template error: {exc.message}"))
        if len(problems) == before and window is not None and isinstance(between, str):
            found.append(TimedText(between.strip(), window, frozenset(weekdays), text))
    return found
