"""content_library/stores.toml: which departments and guides make which store, for brands
whose WeCom departments are not one store each."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guidebot.content.errors import Problem
from guidebot.content.files import STORES_FILE

__all__ = ["STORES_FILE", "MappedStore", "StoreMap", "parse_stores"]
STORE_KEYS = {"id", "name", "departments", "guides", "managers"}
_STORE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_USERID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_@.\-]{0,63}$")  # [mem] WeCom's UserID rule


@dataclass(frozen=True)
class MappedStore:
    id: str
    name: str


@dataclass(frozen=True)
class StoreMap:
    """Department id → store and guide userid → store; a guide's own entry wins."""

    by_department: dict[int, MappedStore] = field(default_factory=dict)
    by_guide: dict[str, MappedStore] = field(default_factory=dict)
    # store managers (店长) named here, in addition to their departments' leaders in WeCom
    by_manager: dict[str, set[str]] = field(default_factory=dict)

    def store_for(self, userid: str, department: int | None) -> MappedStore | None:
        found = self.by_guide.get(userid)
        if found is None and department is not None:
            found = self.by_department.get(department)
        return found

    def managed_by(self, userid: str) -> set[str]:
        """The ids of the stores this file names `userid` a manager of."""
        return set(self.by_manager.get(userid, set()))

    def maps_department(self, department: int) -> bool:
        return department in self.by_department


def _table_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), start=1)
            if line.strip().replace(" ", "") == "[[stores]]"]


def parse_stores(path: Path, data: dict[str, Any], text: str,
                 problems: list[Problem]) -> StoreMap:
    """Validate stores.toml, appending every problem with the line of its [[stores]] table."""
    unknown = sorted(set(data) - {"stores"})
    for key in unknown:
        problems.append(Problem(path, None, f"unknown key {key!r}"))
    raw = data.get("stores", [])
    if not isinstance(raw, list):
        problems.append(Problem(path, None, "stores must be an array of tables ([[stores]])"))
        return StoreMap()
    lines = _table_lines(text)
    result = StoreMap()
    seen: set[str] = set()
    for index, item in enumerate(raw):
        line = lines[index] if index < len(lines) else None
        _store(path, line, item, seen, result, problems)
    return result


def _store(path: Path, line: int | None, item: Any, seen: set[str], into: StoreMap,
           problems: list[Problem]) -> None:
    def bad(message: str) -> None:
        problems.append(Problem(path, line, message))

    if not isinstance(item, dict):
        bad("each [[stores]] must be a table")
        return
    for key in sorted(set(item) - STORE_KEYS):
        bad(f"unknown key {key!r}")
    store_id, name = item.get("id"), item.get("name")
    departments, guides = item.get("departments", []), item.get("guides", [])
    managers = item.get("managers", [])
    if not isinstance(store_id, str) or not _STORE_ID.fullmatch(store_id):
        bad("id: 1-64 letters, digits, '_', '-' or '.'")
        return
    if store_id in seen:
        bad(f"store {store_id!r} is listed twice")
    seen.add(store_id)
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        bad(f"store {store_id}: name must be 1-128 characters")
        return
    if not isinstance(departments, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in departments):
        bad(f"store {store_id}: departments must be a list of positive department ids")
        departments = []
    if not isinstance(guides, list) or not all(
            isinstance(g, str) and _USERID.fullmatch(g) for g in guides):
        bad(f"store {store_id}: guides must be a list of WeCom userids")
        guides = []
    if not isinstance(managers, list) or not all(
            isinstance(m, str) and _USERID.fullmatch(m) for m in managers):
        bad(f"store {store_id}: managers must be a list of WeCom userids")
        managers = []
    store = MappedStore(store_id, name)
    for manager in managers:
        into.by_manager.setdefault(manager, set()).add(store_id)
    for department in departments:
        other = into.by_department.setdefault(department, store)
        if other is not store:
            bad(f"department {department} is in stores {other.id} and {store_id}")
    for guide in guides:
        other = into.by_guide.setdefault(guide, store)
        if other is not store:
            bad(f"guide {guide} is in stores {other.id} and {store_id}")
