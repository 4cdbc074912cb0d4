"""content_library/auto_tags.toml: 自动打标签, the tags a customer gets from what they do and
say (contacts/auto_tags.py marks them). Optional; every rule names tags of tags.toml.

    [[on_open]]                 # the customer opens a guide's tracked card
    categories = ["beauty"]     # the card's catalog category (catalog.toml), and/or
    skus = ["SKU-SERUM-02"]     # its sku; a rule matches a card that has either
    tags = ["护肤兴趣"]

    [[on_message]]              # the customer writes to 微信客服 (text messages)
    keywords = ["防晒", "美白"]
    match = "contains"          # or "exact": the whole message, trimmed; case-insensitive
    tags = ["防晒意向"]

    [[on_order]]                # a paid order (the orders webhook)
    skus = ["SKU-SERUM-02"]     # a line of this sku, or
    categories = ["beauty"]     # of this category (the line's, else the catalog's), and/or
    min_paid_fen = 50000        # paid at least this much (integer fen); all given must hold
    tags = ["已购护肤"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guidebot.content.errors import Problem, line_of

Bad = Callable[[str, str], None]  # (key, message): a problem at that key of the rule

SECTIONS = ("on_open", "on_message", "on_order")
OPEN_KEYS = {"categories", "skus", "tags"}
ORDER_KEYS = {"categories", "skus", "min_paid_fen", "tags"}
MESSAGE_KEYS = {"keywords", "match", "tags"}
MATCHES = ("contains", "exact")
MAX_RULES = 200  # of each kind: a content file, not a data set
MAX_ITEMS = 100  # names in one list
MAX_KEYWORD = 100  # characters
MAX_FEN = 10**15  # a paid amount no order reaches (the order schema caps far below)


@dataclass(frozen=True)
class OpenRule:
    categories: tuple[str, ...]
    skus: tuple[str, ...]
    tags: tuple[str, ...]

    def matches(self, sku: str, category: str) -> bool:
        return bool(sku and sku in self.skus) or bool(category and category in self.categories)


@dataclass(frozen=True)
class MessageRule:
    keywords: tuple[str, ...]
    match: str  # contains | exact
    tags: tuple[str, ...]

    def matches(self, text: str) -> bool:
        said = text.strip().casefold()
        if self.match == "exact":
            return any(said == k.strip().casefold() for k in self.keywords)
        return any(k.casefold() in said for k in self.keywords)


@dataclass(frozen=True)
class OrderRule:
    categories: tuple[str, ...]
    skus: tuple[str, ...]
    min_paid_fen: int | None  # None: any amount
    tags: tuple[str, ...]

    def matches(self, lines: Iterable[tuple[str, str]], paid_fen: int) -> bool:
        """`lines`: (sku, category) of the order's lines. Every condition the rule gives
        holds: a line of its skus or categories (when it names any), the amount (when set)."""
        if self.min_paid_fen is not None and paid_fen < self.min_paid_fen:
            return False
        if not self.skus and not self.categories:
            return True
        return any((sku and sku in self.skus) or (category and category in self.categories)
                   for sku, category in lines)


@dataclass(frozen=True)
class AutoTags:
    on_open: tuple[OpenRule, ...] = ()
    on_message: tuple[MessageRule, ...] = ()
    on_order: tuple[OrderRule, ...] = ()

    def for_open(self, sku: str, category: str) -> tuple[str, ...]:
        """The tag names every rule matching a card of this sku and category gives, each once
        in the file's order."""
        return _once(r.tags for r in self.on_open if r.matches(sku, category))

    def for_message(self, text: str) -> tuple[str, ...]:
        return _once(r.tags for r in self.on_message if r.matches(text))

    def for_order(self, lines: Iterable[tuple[str, str]], paid_fen: int) -> tuple[str, ...]:
        seen = tuple(lines)
        return _once(r.tags for r in self.on_order if r.matches(seen, paid_fen))

    def __len__(self) -> int:
        return len(self.on_open) + len(self.on_message) + len(self.on_order)


Rule = OpenRule | MessageRule | OrderRule


def _once(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tag for tags in groups for tag in tags))


def catalog_names(root: Path) -> tuple[set[str], set[str]]:
    """The skus and categories of catalog.toml (the commerce catalog loader validates the
    file itself; an unreadable one names none here)."""
    try:
        data = tomllib.loads((root / "catalog.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return set(), set()
    products = [p for p in data.get("products", []) if isinstance(p, dict)]
    return ({str(p["sku"]) for p in products if p.get("sku")},
            {str(p["category"]) for p in products if p.get("category")})


def parse_auto_tags(path: Path, data: dict[str, Any], text: str, declared: set[str],
                    catalog: tuple[set[str], set[str]], problems: list[Problem]) -> AutoTags:
    """The rules, each checked (its tags declared in tags.toml, its skus and categories in
    catalog.toml); problems with the line of the key, else of the rule's table."""
    for key in data:
        if key not in SECTIONS:
            problems.append(Problem(path, line_of(text, key), f"unknown key {key!r}"))
    skus, categories = catalog
    rules: dict[str, list[Any]] = {}
    for section in SECTIONS:
        raw = data.get(section, [])
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            problems.append(Problem(path, line_of(text, section),
                                    f"{section} must be an array of tables ([[{section}]])"))
            continue
        if len(raw) > MAX_RULES:
            problems.append(Problem(path, line_of(text, section),
                                    f"at most {MAX_RULES} [[{section}]] rules"))
        spans = _spans(text, section)
        found = []
        for index, table in enumerate(raw):
            span = spans[index] if index < len(spans) else (None, None)
            rule = _rule(path, text, section, table, span, declared, skus, categories,
                         problems)
            if rule is not None:
                found.append(rule)
        rules[section] = found
    return AutoTags(tuple(rules.get("on_open", ())), tuple(rules.get("on_message", ())),
                    tuple(rules.get("on_order", ())))


def _spans(text: str, section: str) -> list[tuple[int | None, int | None]]:
    """For each `[[section]]` table: the line of its header and the last line before the
    next table header (None: the end of the file)."""
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines, start=1) if line.strip().startswith("[")]
    spans: list[tuple[int | None, int | None]] = []
    for position, number in enumerate(headers):
        if lines[number - 1].strip().replace(" ", "") == f"[[{section}]]":
            end = headers[position + 1] - 1 if position + 1 < len(headers) else None
            spans.append((number, end))
    return spans


def _line(text: str, span: tuple[int | None, int | None], key: str) -> int | None:
    """The line of `key` inside the table `span`, else the table's header line."""
    start, end = span
    if start is None:
        return line_of(text, key)
    for number, line in enumerate(text.splitlines(), start=1):
        if number <= start or (end is not None and number > end):
            continue
        if line.strip().startswith((f"{key} ", f"{key}=")):
            return number
    return start


def _names(value: Any, *, allow_empty: bool = True) -> list[str] | None:
    """A list of non-empty strings (None: it is not one)."""
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        return None
    return value if value or allow_empty else None


def _rule(path: Path, text: str, section: str, table: dict[str, Any],
          span: tuple[int | None, int | None], declared: set[str], skus: set[str],
          categories: set[str], problems: list[Problem]) -> Rule | None:
    before = len(problems)

    def bad(key: str, message: str) -> None:
        problems.append(Problem(path, _line(text, span, key), f"{section}: {message}"))

    allowed = {"on_open": OPEN_KEYS, "on_order": ORDER_KEYS}.get(section, MESSAGE_KEYS)
    for key in sorted(set(table) - allowed):
        bad(key, f"unknown key {key!r}")
    tags = _names(table.get("tags"), allow_empty=False)
    if tags is None:
        bad("tags", f"tags must be a list of 1-{MAX_ITEMS} tag names")
    else:
        for tag in tags:
            if tag not in declared:
                bad("tags", f"tag {tag!r} is not declared in tags.toml")
    rule: Rule | None
    if section == "on_open":
        rule = _open_rule(table, tags or [], skus, categories, bad)
    elif section == "on_order":
        rule = _order_rule(table, tags or [], skus, categories, bad)
    else:
        rule = _message_rule(table, tags or [], bad)
    return rule if len(problems) == before else None


def _open_rule(table: dict[str, Any], tags: list[str], skus: set[str], categories: set[str],
               bad: Bad) -> OpenRule | None:
    named = _catalog_names(table, skus, categories, bad)
    if named is None:
        return None
    named_categories, named_skus = named
    if not named_categories and not named_skus:
        bad("tags", "a rule needs categories or skus (which cards it is about)")
    return OpenRule(tuple(named_categories), tuple(named_skus), tuple(tags))


def _order_rule(table: dict[str, Any], tags: list[str], skus: set[str], categories: set[str],
                bad: Bad) -> OrderRule | None:
    named = _catalog_names(table, skus, categories, bad)
    minimum = table.get("min_paid_fen")
    if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int)
                                or not 0 <= minimum <= MAX_FEN):
        bad("min_paid_fen", "min_paid_fen must be a non-negative integer (fen)")
        return None
    if named is None:
        return None
    named_categories, named_skus = named
    if not named_categories and not named_skus and minimum is None:
        bad("tags", "a rule needs categories, skus or min_paid_fen (which orders it is about)")
    return OrderRule(tuple(named_categories), tuple(named_skus), minimum, tuple(tags))


def _catalog_names(table: dict[str, Any], skus: set[str], categories: set[str],
                   bad: Bad) -> tuple[list[str], list[str]] | None:
    """The rule's categories and skus, each checked against catalog.toml (None: not lists)."""
    named_categories = _names(table.get("categories", []))
    named_skus = _names(table.get("skus", []))
    if named_categories is None:
        bad("categories", "categories must be a list of catalog categories")
    if named_skus is None:
        bad("skus", "skus must be a list of catalog skus")
    if named_categories is None or named_skus is None:
        return None
    for category in named_categories:
        if category not in categories:
            known = ", ".join(sorted(categories)) or "none"
            bad("categories", f"category {category!r} is not in catalog.toml (known: {known})")
    for sku in named_skus:
        if sku not in skus:
            bad("skus", f"sku {sku!r} is not in catalog.toml")
    return named_categories, named_skus


def _message_rule(table: dict[str, Any], tags: list[str], bad: Bad) -> MessageRule | None:
    keywords = _names(table.get("keywords"), allow_empty=False)
    if keywords is None:
        bad("keywords", f"keywords must be a list of 1-{MAX_ITEMS} words")
        keywords = []
    for keyword in keywords:
        if len(keyword) > MAX_KEYWORD:
            bad("keywords", f"a keyword has at most {MAX_KEYWORD} characters")
    match = table.get("match", "contains")
    if match not in MATCHES:
        bad("match", 'match must be "contains" or "exact"')
        match = "contains"
    return MessageRule(tuple(keywords), str(match), tuple(tags))
