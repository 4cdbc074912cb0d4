"""content_library/auto_tags.toml: the rules load with the library, every problem is refused
with its file and line, and a rule matches as documented."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from guidebot.check import _library
from guidebot.content.auto_tags import MessageRule, OpenRule, OrderRule
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


def _refused(tmp_path: Path, rules: str) -> tuple[list[str], Callable[[int, str], bool]]:
    """The problems loading `rules` reports, and whether one is at a line with those words."""
    with pytest.raises(ContentInvalid) as info:
        load_library(_root(tmp_path, rules))
    found = [str(p) for p in info.value.problems]
    where = str(tmp_path / "auto_tags.toml")

    def has(line: int, words: str) -> bool:
        return any(x.startswith(f"{where}:{line}: ") and words in x for x in found)

    return found, has


def test_every_problem_is_refused_with_file_and_line(tmp_path: Path) -> None:
    found, has = _refused(tmp_path, BAD)
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
    assert rules.on_order == ()  # the shipped order rule is commented out


def test_the_commented_order_example_loads_once_uncommented(tmp_path: Path) -> None:
    """The example at the end of the shipped file, uncommented, with its tag declared."""
    shipped = (ROOT / "content_library" / "auto_tags.toml").read_text(encoding="utf-8")
    example = shipped[shipped.index("# [[on_order]]"):]
    rule = "\n".join(line.removeprefix("# ") for line in example.splitlines())
    root = tmp_path / "library"
    for name in ("catalog.toml", "tags.toml", "messages/welcome_default.toml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text((ROOT / "content_library" / name).read_text(encoding="utf-8"),
                                 encoding="utf-8")
    with (root / "tags.toml").open("a", encoding="utf-8") as f:
        f.write('\n[[groups]]\nname = "购买"\ntags = ["高客单护肤"]\n')
    (root / "auto_tags.toml").write_text(rule + "\n", encoding="utf-8")
    rules = load_library(root).auto_tags
    assert rules.on_order == (OrderRule(("beauty",), (), 50000, ("高客单护肤",)),)


ORDERS = """
[[on_order]]
skus = ["SKU-A"]
tags = ["护肤兴趣"]

[[on_order]]
min_paid_fen = 50000
tags = ["防晒意向"]

[[on_order]]
categories = ["skincare"]
min_paid_fen = 0
tags = ["护肤兴趣"]
"""
BAD_ORDERS = """
[[on_order]]
skus = ["SKU-A"]
min_paid_fen = -1
tags = ["护肤兴趣"]

[[on_order]]
min_paid_fen = 99.5
tags = ["护肤兴趣"]

[[on_order]]
min_paid_fen = "500"
tags = ["护肤兴趣"]

[[on_order]]
tags = ["护肤兴趣"]

[[on_order]]
min_paid_fen = true
keywords = ["x"]
tags = ["鞋子"]
"""


def test_order_rules_load_and_match_by_line_and_amount(tmp_path: Path) -> None:
    rules = load_library(_root(tmp_path, ORDERS)).auto_tags
    assert rules.on_order[1] == OrderRule((), (), 50000, ("防晒意向",))
    assert rules.for_order([("SKU-A", "")], 100) == ("护肤兴趣",)
    assert rules.for_order([("SKU-B", "skincare")], 0) == ("护肤兴趣",)
    assert rules.for_order([("SKU-B", "other"), ("SKU-A", "x")], 50000) == ("护肤兴趣", "防晒意向")
    assert rules.for_order([("SKU-B", "other")], 49999) == ()
    assert rules.for_order([], 50000) == ("防晒意向",)
    both = OrderRule(("skincare",), ("SKU-A",), 1000, ("t",))  # every condition holds
    assert both.matches([("SKU-A", "")], 1000) and both.matches([("x", "skincare")], 2000)
    assert not both.matches([("SKU-A", "")], 999) and not both.matches([("x", "y")], 5000)


def test_bad_order_rules_are_refused_with_file_and_line(tmp_path: Path) -> None:
    found, has = _refused(tmp_path, BAD_ORDERS)
    bad_fen = "on_order: min_paid_fen must be a non-negative integer (fen)"
    assert has(4, bad_fen) and has(8, bad_fen) and has(12, bad_fen), found
    assert has(16, "on_order: a rule needs categories, skus or min_paid_fen"), found
    assert has(19, bad_fen), found
    assert has(20, "on_order: unknown key 'keywords'"), found
    assert has(21, "tag '鞋子' is not declared in tags.toml"), found
    assert len(found) == 7, found


async def test_a_bad_order_rule_is_refused_by_check_and_the_hot_reload(tmp_path: Path) -> None:
    from guidebot.settings import load_settings
    from tests.support.stack import write_config

    root = _root(tmp_path / "library", ORDERS)
    library = load_library(root)
    (root / "auto_tags.toml").write_text(BAD_ORDERS, encoding="utf-8")
    assert (await reload_library(library, settle=False)).status == "rejected"
    assert library.auto_tags.for_order([("SKU-A", "")], 0) == ("护肤兴趣",)  # kept
    settings = load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db", root))
    seen: list[str] = []
    assert _library(settings, seen.append) is None
    assert any("auto_tags.toml:4: on_order: min_paid_fen must be" in x for x in seen), seen
