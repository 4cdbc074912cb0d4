"""content_library/auto_tags.toml: the rules load with the library, every problem is refused
with its file and line, and a rule matches as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.check import _library
from guidebot.content.auto_tags import MessageRule, OpenRule
from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.content.reload import reload_library

ROOT = Path(__file__).resolve().parents[2]
TAGS = '[[groups]]\nname = "兴趣"\ntags = ["护肤兴趣", "防晒意向"]\n'
CATALOG = """
[[products]]
sku = "SKU-A"
name = "精华"
category = "skincare"
"""
GOOD = """
[[on_open]]
categories = ["skincare"]
tags = ["护肤兴趣"]

[[on_message]]
keywords = ["防晒"]
tags = ["防晒意向"]
"""
BAD = """colour = "red"

[[on_open]]
categories = ["skincare"]
tags = ["护肤兴趣"]
when = "now"

[[on_open]]
tags = ["护肤兴趣"]

[[on_open]]
categories = ["shoes"]
skus = ["SKU-Z"]
tags = ["鞋子"]

[[on_message]]
keywords = []
match = "fuzzy"
tags = ["防晒意向"]
"""


def _root(tmp_path: Path, auto_tags: str) -> Path:
    files = {"messages/welcome_default.toml": 'text = "您好"\n', "tags.toml": TAGS,
             "catalog.toml": CATALOG, "auto_tags.toml": auto_tags}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_the_rules_load_and_match(tmp_path: Path) -> None:
    rules = load_library(_root(tmp_path, GOOD)).auto_tags
    assert rules.on_open == (OpenRule(("skincare",), (), ("护肤兴趣",)),)
    assert rules.for_open("SKU-A", "skincare") == ("护肤兴趣",)
    assert rules.for_open("SKU-A", "") == ()
    assert rules.for_message("有防晒霜吗") == ("防晒意向",)
    assert rules.for_message("你好") == ()


def test_matching_is_case_insensitive_and_exact_wants_the_whole_message() -> None:
    contains = MessageRule(("SPF",), "contains", ("t",))
    exact = MessageRule(("SPF", "防晒"), "exact", ("t",))
    assert contains.matches("有 spf50 吗") and not contains.matches("防晒")
    assert exact.matches("  spf\n") and exact.matches("防晒")
    assert not exact.matches("有防晒霜吗") and not exact.matches("spf50")
    by_sku = OpenRule((), ("SKU-A",), ("t",))
    assert by_sku.matches("SKU-A", "other") and not by_sku.matches("SKU-B", "skincare")


def test_every_problem_is_refused_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ContentInvalid) as info:
        load_library(_root(tmp_path, BAD))
    found = [str(p) for p in info.value.problems]
    where = str(tmp_path / "auto_tags.toml")

    def has(line: int, words: str) -> bool:
        return any(x.startswith(f"{where}:{line}: ") and words in x for x in found)

    assert has(1, "unknown key 'colour'"), found
    assert has(6, "on_open: unknown key 'when'"), found
    assert has(9, "a rule needs categories or skus"), found
    assert has(12, "category 'shoes' is not in catalog.toml (known: skincare)"), found
    assert has(13, "sku 'SKU-Z' is not in catalog.toml"), found
    assert has(14, "tag '鞋子' is not declared in tags.toml"), found
    assert has(17, "keywords must be a list of 1-100 words"), found
    assert has(18, 'match must be "contains" or "exact"'), found
    assert len(found) == 8, found


def test_guidebot_check_reports_them(tmp_path: Path) -> None:
    from guidebot.settings import load_settings
    from tests.support.stack import write_config

    settings = load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db",
                                          _root(tmp_path / "library", BAD)))
    seen: list[str] = []
    assert _library(settings, seen.append) is None
    assert any("auto_tags.toml:12: on_open: category 'shoes'" in x for x in seen), seen


async def test_an_edit_is_hot_reloaded_and_a_bad_one_keeps_the_rules(tmp_path: Path) -> None:
    root = _root(tmp_path, GOOD)
    library = load_library(root)
    (root / "auto_tags.toml").write_text(
        GOOD.replace('keywords = ["防晒"]', 'keywords = ["美白"]'), encoding="utf-8")
    assert (await reload_library(library, settle=False)).replaced
    assert library.auto_tags.for_message("美白") == ("防晒意向",)
    (root / "auto_tags.toml").write_text(BAD, encoding="utf-8")
    assert (await reload_library(library, settle=False)).status == "rejected"
    assert library.auto_tags.for_message("美白") == ("防晒意向",)
    (root / "auto_tags.toml").unlink()  # the file is optional
    assert (await reload_library(library, settle=False)).replaced
    assert len(library.auto_tags) == 0


def test_the_shipped_rules_name_shipped_tags_and_products() -> None:
    rules = load_library(ROOT / "content_library").auto_tags
    assert rules.for_open("SKU-SERUM-02", "beauty") == ("美妆兴趣", "护肤兴趣")
    assert rules.for_open("SKU-LIPSTICK-01", "beauty") == ("美妆兴趣",)
    assert rules.for_open("SKU-SCARF-03", "accessories") == ()
    assert rules.for_message("这款能美白吗") == ("防晒意向",)
