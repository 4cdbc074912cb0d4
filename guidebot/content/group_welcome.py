"""content_library/group_welcome.toml: the group welcome templates (入群欢迎语) HQ keeps in
WeCom. Each names a message of messages/ whose text (with WeCom's %NICKNAME% placeholder, no
guidebot placeholders: WeCom sends it, to whoever joins) and at most one attachment make the
template (FACTS-next §C.4: one attachment kind is used, which one of several is
unconfirmed).

    [[templates]]
    id = "vip"                       # guidebot's name for it
    message = "group_welcome_vip"    # messages/group_welcome_vip.toml
    notify = true                    # WeCom tells members to apply it (default true)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guidebot.content.errors import Problem, line_of, only_tables

TEMPLATE_KEYS = {"id", "message", "notify"}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
MAX_TEMPLATES = 100  # FACTS-next §C.4: ≤ 100 templates per corp
TEXT_BYTES = 3000  # text.content
# FACTS-next §C.4: link.title ≤ 128 B, link.desc ≤ 512 B, miniprogram.title ≤ 64 B
FIELD_BYTES = {("link", "title"): 128, ("link", "desc"): 512, ("miniprogram", "title"): 64}
KINDS = {"image", "link", "miniprogram"}  # of guidebot's attachment kinds


@dataclass(frozen=True)
class GroupWelcome:
    id: str
    message: str
    notify: bool


def parse_group_welcome(path: Path, data: dict[str, Any], text: str,
                        messages: dict[str, Any], problems: list[Problem]) -> tuple[
                            GroupWelcome, ...]:
    """The templates, each checked against its message; problems with file:line."""
    raw = only_tables(path, data, text, "templates", problems)
    if raw is None:
        return ()
    if len(raw) > MAX_TEMPLATES:
        problems.append(Problem(path, None, f"at most {MAX_TEMPLATES} templates (WeCom's limit "
                                "per corp)"))
    found: list[GroupWelcome] = []
    for item in raw:
        template = _template(path, text, item, messages, problems)
        if template is None:
            continue
        if any(t.id == template.id for t in found):
            problems.append(Problem(path, _line(text, "id", template.id, last=True),
                                    f"template {template.id!r} twice"))
            continue
        found.append(template)
    return tuple(found)


def _line(text: str, key: str, value: str, *, last: bool = False) -> int | None:
    """The line of `key = "value"` (its first, or its last, occurrence)."""
    found = [n for n, raw in enumerate(text.splitlines(), start=1)
             if raw.strip().startswith(key) and f'"{value}"' in raw]
    return (found[-1] if last else found[0]) if found else line_of(text, key)


def _template(path: Path, text: str, item: Any, messages: dict[str, Any],
              problems: list[Problem]) -> GroupWelcome | None:
    if not isinstance(item, dict):
        problems.append(Problem(path, line_of(text, "templates"), "a template is a table"))
        return None
    before = len(problems)
    ident, message_id, notify = item.get("id"), item.get("message"), item.get("notify", True)
    where = _line(text, "id", ident) if isinstance(ident, str) else line_of(text, "templates")
    for key in item:
        if key not in TEMPLATE_KEYS:
            problems.append(Problem(path, where, f"unknown key {key!r}"))
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        problems.append(Problem(path, where, "id: lowercase letters, digits, - and _ "
                                "(up to 48)"))
    if not isinstance(notify, bool):
        problems.append(Problem(path, where, "notify must be true or false"))
    message = messages.get(message_id) if isinstance(message_id, str) else None
    at = _line(text, "message", message_id) if isinstance(message_id, str) else where
    if message is None:
        problems.append(Problem(path, at, f"message {message_id!r}: no such message in "
                                "messages/"))
    else:
        for problem in fit(message):
            problems.append(Problem(path, at, f"message {message_id!r}: {problem}"))
    if len(problems) > before:
        return None
    assert isinstance(ident, str) and isinstance(message_id, str)
    return GroupWelcome(ident, message_id, bool(notify))


def fit(message: Any) -> list[str]:
    """Why a message cannot be a group welcome template (nothing: it can)."""
    found = []
    if "{{" in message.text or "{%" in message.text:
        found.append("a group welcome cannot use guidebot placeholders (WeCom sends it to "
                     "whoever joins; use %NICKNAME% for their name)")
    if len(message.text.strip().encode()) > TEXT_BYTES:
        found.append(f"text over {TEXT_BYTES} bytes")
    if len(message.attachments) > 1:
        found.append("at most one attachment (WeCom uses one)")
    for item in message.attachments:
        if item["type"] not in KINDS:
            found.append(f"a {item['type']} attachment cannot go in a group welcome")
        for (kind, key), limit in FIELD_BYTES.items():
            if item["type"] == kind and len(str(item.get(key, "")).encode()) > limit:
                found.append(f"{kind} {key} over {limit} bytes")
    return found
