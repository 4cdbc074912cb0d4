"""content_library validation: every problem with its file and line; rendering placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.content.render import render

ROOT = Path(__file__).resolve().parents[2]


def _library(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_shipped_library_is_valid() -> None:
    library = load_library(ROOT / "content_library")
    assert {"welcome_default", "welcome_double11"} <= set(library.messages)
    assert any(g.name == "来源渠道" for g in library.tag_groups)


def test_every_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    root = _library(tmp_path, {
        "messages/a.toml": 'text = "你好 {{ customer.phone }}"\ncolour = "red"\n',
        "messages/b.toml": 'text = "hi"\n[[attachments]]\ntype = "video"\n',
        "messages/c.toml": 'text = "{% if %}"\n',
        "messages/d.toml": "text = \n",
    })
    with pytest.raises(ContentInvalid) as info:
        load_library(root)
    lines = [str(p) for p in info.value.problems]
    assert any("a.toml:1" in x and "customer.phone" in x for x in lines)
    assert any("a.toml:2" in x and "unknown key 'colour'" in x for x in lines)
    assert any("b.toml:2" in x and "attachment type" in x for x in lines)
    assert any("c.toml:1" in x and "template error" in x for x in lines)
    assert any("d.toml:1" in x and "not valid TOML" in x for x in lines)


def test_render_fills_known_placeholders_and_blanks_unknown_values() -> None:
    text = "{% if customer.name %}{{ customer.name }}，{% endif %}我是{{ guide.name }}"
    values = {"customer": {"name": "周婷"}, "guide": {"name": "李娜"}}
    assert render(text, values) == "周婷，我是李娜"
    assert render(text, {"guide": {"name": "李娜"}}) == "我是李娜"


def test_sandboxed_templates_cannot_reach_python() -> None:
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        render("{{ customer.name.__class__.__mro__ }}", {"customer": {"name": "x"}})
