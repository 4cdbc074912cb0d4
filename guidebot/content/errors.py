"""Content problems, each naming a file and (where known) a line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guidebot.errors import ValidationFailed


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.message}"


class ContentInvalid(ValidationFailed):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def line_of(text: str, key: str) -> int | None:
    """The first line that assigns `key` (best effort: TOML parsers keep no positions)."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith((f"{key} ", f"{key}=", f"[{key}]", f"[[{key}]]")):
            return number
    return None


def only_tables(path: Path, data: dict[str, Any], text: str, key: str,
                problems: list[Problem]) -> list[Any] | None:
    """A file holding one array of tables `[[key]]`: its items ([] when absent), or None when
    `key` is not an array; a problem for every other top-level key."""
    for other in data:
        if other != key:
            problems.append(Problem(path, line_of(text, other), f"unknown key {other!r}"))
    raw = data.get(key, [])
    if not isinstance(raw, list):
        problems.append(Problem(path, line_of(text, key), f"{key} must be an array of tables"))
        return None
    return raw


def value_line(text: str, key: str, value: str) -> int | None:
    """The first line assigning `key` that holds `value` quoted, else the first assigning
    `key` (line_of)."""
    quoted = (f'"{value}"', f"'{value}'")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith((f"{key} ", f"{key}=")) and any(q in stripped for q in quoted):
            return number
    return line_of(text, key)


def toml_error_line(exc: ValueError) -> int | None:
    """The line a tomllib.TOMLDecodeError names (`lineno` from Python 3.14, else its
    message's "at line N")."""
    found = re.search(r"at line (\d+)", str(exc))
    return getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
