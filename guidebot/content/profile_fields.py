"""content_library/profile_fields.toml: the brand's customer profile fields (客户资料), which
guides fill in from the chat sidebar and HQ from the console or its CRM (the admin API).

    [[fields]]
    id = "skin"                      # ascii: a-z 0-9 _ (1–32), the API's and the CSV's name
    label = "肤质"                    # what guides and HQ read (1–20 characters)
    kind = "choice"                  # text | choice | multi | date | number
    options = ["干性", "油性"]        # choice and multi only: 1–50 options, 1–20 characters
    max_length = 100                 # text only (1–500, default 100)
    guides_edit = true               # guides may set it in the sidebar (default true)

The file is optional (no fields). Values live in the database per customer
(contacts/profile_fields.py); removing a field hides its values, keeping them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guidebot.content.errors import Problem, line_of, only_tables, value_line

KINDS = ("text", "choice", "multi", "date", "number")
FIELD_KEYS = {"id", "label", "kind", "options", "max_length", "guides_edit"}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_FIELDS = 50
MAX_LABEL = 20
MAX_OPTIONS = 50
MAX_OPTION = 20
DEFAULT_MAX_LENGTH = 100
MAX_LENGTH = 500


@dataclass(frozen=True)
class ProfileField:
    id: str
    label: str
    kind: str
    options: tuple[str, ...] = ()
    max_length: int = DEFAULT_MAX_LENGTH
    guides_edit: bool = True


def parse_profile_fields(path: Path, data: dict[str, Any], text: str,
                         problems: list[Problem]) -> tuple[ProfileField, ...]:
    """The fields, in the file's order; problems with file:line."""
    raw = only_tables(path, data, text, "fields", problems)
    if raw is None:
        return ()
    if len(raw) > MAX_FIELDS:
        problems.append(Problem(path, None, f"at most {MAX_FIELDS} fields"))
    found: list[ProfileField] = []
    for item in raw:
        field = _field(path, text, item, problems)
        if field is None:
            continue
        if any(f.id == field.id for f in found):
            problems.append(Problem(path, _last_line(text, field.id),
                                    f"field {field.id!r} twice"))
            continue
        found.append(field)
    return tuple(found)


def _last_line(text: str, ident: str) -> int | None:
    lines = [n for n, raw in enumerate(text.splitlines(), start=1)
             if raw.strip().startswith("id") and f'"{ident}"' in raw]
    return lines[-1] if lines else line_of(text, "id")


def _field(path: Path, text: str, item: Any, problems: list[Problem]) -> ProfileField | None:
    if not isinstance(item, dict):
        problems.append(Problem(path, line_of(text, "fields"), "a field is a table"))
        return None
    before = len(problems)
    ident = item.get("id")
    where = value_line(text, "id", ident) if isinstance(ident, str) else line_of(text, "fields")
    named = f"field {ident!r}" if isinstance(ident, str) else "a field"

    def problem(message: str, key: str | None = None) -> None:
        line = _key_line(text, where, key) or where
        problems.append(Problem(path, line, f"{named}: {message}"))

    for key in sorted(set(item) - FIELD_KEYS):
        problem(f"unknown key {key!r}", key)
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        problem("id: 1-32 of a-z 0-9 _ starting with a letter", "id")
    label = item.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL:
        problem(f"label: 1-{MAX_LABEL} characters", "label")
    kind = item.get("kind")
    if kind not in KINDS:
        problem("kind: one of " + ", ".join(KINDS), "kind")
    options = item.get("options")
    if kind in ("choice", "multi"):
        if (not isinstance(options, list) or not 0 < len(options) <= MAX_OPTIONS
                or not all(isinstance(o, str) and len(o.strip()) > 0 and len(o) <= MAX_OPTION
                           for o in options)):
            problem(f"options: 1-{MAX_OPTIONS} options of 1-{MAX_OPTION} characters",
                    "options")
        elif len(set(options)) != len(options):
            problem("options: an option is listed twice", "options")
    elif options is not None:
        problem(f"options: only for choice and multi, not {kind}", "options")
    max_length = item.get("max_length", DEFAULT_MAX_LENGTH)
    if "max_length" in item and kind != "text":
        problem(f"max_length: only for text, not {kind}", "max_length")
    elif (not isinstance(max_length, int) or isinstance(max_length, bool)
          or not 0 < max_length <= MAX_LENGTH):
        problem(f"max_length: a whole number 1-{MAX_LENGTH}", "max_length")
    guides_edit = item.get("guides_edit", True)
    if not isinstance(guides_edit, bool):
        problem("guides_edit: true or false", "guides_edit")
    if len(problems) > before:
        return None
    return ProfileField(str(ident), str(label).strip(), str(kind),
                        tuple(options) if isinstance(options, list) else (),
                        int(max_length), bool(guides_edit))


def _key_line(text: str, start: int | None, key: str | None) -> int | None:
    """The line of `key` within the field's table that begins near `start` (the id's line):
    the first line from the table's [[fields]] header on that assigns `key`."""
    if key is None or start is None:
        return None
    lines = text.splitlines()
    header = start
    while header > 1 and lines[header - 1].strip() != "[[fields]]":
        header -= 1
    for number in range(header, len(lines) + 1):
        stripped = lines[number - 1].strip()
        if number > header and stripped == "[[fields]]":
            break
        if stripped.startswith((f"{key} ", f"{key}=")):
            return number
    return None
