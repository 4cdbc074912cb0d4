"""Customer-chat content: replies/*.toml, faq/*.toml, chat/words.toml, chat/texts.toml,
chat/opt_out.toml, chat/watch_words.toml (会话质检) and the chat keys of catalog.toml,
validated with file and line."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guidebot.content.errors import ContentInvalid, Problem, line_of, toml_error_line
from guidebot.content.files import CHAT_DIR

WORD_LISTS = ("opt_out", "opt_in", "handoff", "complaint", "injection", "price", "stock",
              "stopwords")
COMMANDS = ("tasks", "customer", "share", "sales", "scripts", "suggest")
# Every text key and the placeholders it may use.
TEXT_FIELDS: Mapping[str, frozenset[str]] = {
    "opt_out_confirm": frozenset(),
    "opt_in_confirm": frozenset(),
    "catalog_price": frozenset({"name", "price", "stock"}),
    "catalog_stock": frozenset({"name", "price", "stock"}),
    "catalog_sold_out": frozenset({"name", "price"}),
    "catalog_info": frozenset({"name", "price", "description"}),
    "stock_part": frozenset(),
    "handoff_summary": frozenset({"customer", "why", "excerpt"}),
    **{f"why_{k}": frozenset() for k in ("asked", "complaint", "injection", "ungrounded",
                                          "no_answer")},
    "help": frozenset(),
    "tasks_header": frozenset({"count"}),
    "task_line": frozenset({"title", "recipients", "status"}),
    "tasks_more": frozenset({"count"}),
    "tasks_none": frozenset(),
    "tasks_follow_ups": frozenset({"count", "customers"}),
    **{f"task_status_{k}": frozenset() for k in ("queued", "sending", "sent", "confirmed",
                                                  "cancelled", "failed")},
    "customer_none": frozenset({"query"}),
    "customer_profile": frozenset({"name", "tags", "guide", "orders", "propensity"}),
    "customer_more": frozenset({"count"}),
    "customer_no_tags": frozenset(),
    "customer_no_guide": frozenset(),
    "customer_no_orders": frozenset(),
    "order_line": frozenset({"date", "amount"}),
    "propensity_line": frozenset({"score", "visits", "categories"}),
    "customer_no_categories": frozenset(),
    "share_none": frozenset({"query"}),
    "share_card": frozenset({"name", "price", "page"}),
    "sales": frozenset({"period", "net", "orders", "earned", "clawback"}),
    "sales_none": frozenset({"period"}),
    "scripts_none": frozenset({"query"}),
    "scripts_header": frozenset(),
    "script_line": frozenset({"text"}),
    "suggest_header": frozenset(),
    "suggest_line": frozenset({"number", "text"}),
    "suggest_none": frozenset(),
    "churn_notice": frozenset({"customer", "added", "orders"}),
    "churn_added_unknown": frozenset(),
    "churn_orders": frozenset({"count", "amount"}),
    "churn_no_orders": frozenset(),
    "guide_deleted_notice": frozenset({"guide", "store", "customer", "added", "orders"}),
    "guide_deleted_no_store": frozenset(),
    "guide_deleted_orders": frozenset({"count", "amount"}),
    "guide_deleted_no_orders": frozenset(),
    "radar_notice": frozenset({"customer", "card", "count"}),
    "radar_card_unnamed": frozenset(),
    "handoff_reply_notice": frozenset({"customer", "minutes", "url"}),
    "watch_notice": frozenset({"rule", "word", "who", "customer", "url"}),
    "watch_who_servicer": frozenset({"guide"}),
    "watch_who_customer": frozenset(),
    "transfer_notice": frozenset({"handover", "count", "customers"}),
    "transfer_more": frozenset({"n"}),  # how many more than named
    "digest_header": frozenset({"date"}),
    "digest_tasks": frozenset({"count", "titles"}),
    "digest_titles_more": frozenset({"n"}),  # how many more than named
    "digest_reminders": frozenset({"count", "customers"}),
    "digest_added": frozenset({"count"}),
    "digest_deleted": frozenset({"count"}),
    "digest_orders": frozenset({"count", "amount"}),
    "digest_commission": frozenset({"period", "net"}),
    "digest_target": frozenset({"period", "goals"}),
    "digest_target_adds": frozenset({"progress"}),
    "digest_target_gmv": frozenset({"progress"}),
    "digest_target_sep": frozenset(),
    "digest_footer": frozenset(),
    "weekly_header": frozenset({"store", "start", "end"}),
    "weekly_customers": frozenset({"adds", "deletions", "net"}),
    "weekly_orders": frozenset({"orders", "orders_change", "gmv", "gmv_change"}),
    "weekly_change": frozenset({"change"}),  # "+25%", "-10%", "+0%"
    "weekly_change_none": frozenset(),  # the week before had none
    "weekly_top": frozenset({"n", "guides"}),
    "weekly_top_guide": frozenset({"name", "gmv", "adds"}),
    "weekly_top_sep": frozenset(),
    "weekly_pending": frozenset({"guides"}),
    "weekly_pending_guide": frozenset({"name", "count"}),
    "weekly_pending_more": frozenset({"n"}),  # how many guides in all, more than named
    "weekly_pending_sep": frozenset(),
    "weekly_target": frozenset({"period", "date", "goals"}),
    "weekly_target_adds": frozenset({"progress"}),
    "weekly_target_gmv": frozenset({"progress"}),
    "weekly_target_sep": frozenset(),
    "weekly_link": frozenset({"url"}),
}
DIGEST_TEXTS = frozenset(k for k in TEXT_FIELDS if k.startswith(("digest_", "weekly_")))
# Texts added after libraries began to keep their own chat/texts.toml: a library's file
# without them takes the shipped ones, so an upgrade needs no edit of it.
LATER_TEXTS = frozenset({"churn_notice", "churn_added_unknown", "churn_orders",
                         "churn_no_orders", "opt_in_confirm", "transfer_notice",
                         "transfer_more", "radar_notice", "radar_card_unnamed",
                         "handoff_reply_notice", "watch_notice", "watch_who_servicer",
                         "watch_who_customer", "guide_deleted_notice",
                         "guide_deleted_no_store", "guide_deleted_orders",
                         "guide_deleted_no_orders"}) | DIGEST_TEXTS
LATER_WORDS = frozenset({"opt_in"})  # the same for chat/words.toml
REPLY_KEYS = {"id", "keywords", "message", "max_chars"}
FAQ_KEYS = {"id", "question", "answer", "keywords"}
PRODUCT_CHAT_KEYS = {"description": str, "stock": int, "attributes": dict}
WATCH_KEYS = {"name", "applies", "level", "words"}
WATCH_WHO = ("servicer", "customer")
WATCH_LEVELS = ("warn", "alert")


@dataclass(frozen=True)
class ReplyRule:
    id: str
    keywords: tuple[str, ...]
    message: str
    max_chars: int = 0  # 0: any length


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    answer: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class WatchRule:
    """A 会话质检 rule of chat/watch_words.toml: its words (found anywhere, any case) in the
    messages of `applies` ("servicer", "customer") are flagged at `level` (warn | alert)."""

    name: str
    applies: tuple[str, ...]
    level: str
    words: tuple[str, ...]


@dataclass(eq=False)
class ChatContent:
    """The chat content in force. One object for the process, like the Library: services keep
    a reference, and a reload swaps its contents in place (`replace_with`), so they all see
    the new content. What a service builds from it (the router's indexes) is built again
    when `generation` has moved on."""

    words: Mapping[str, tuple[str, ...]]
    texts: Mapping[str, str]
    replies: tuple[ReplyRule, ...]
    faqs: tuple[FaqEntry, ...]
    commands: Mapping[str, tuple[str, ...]]
    opt_out_tag: str = ""  # chat/opt_out.toml: the tag an opted-out customer gets ("": none)
    watch: tuple[WatchRule, ...] = ()  # chat/watch_words.toml (会话质检)
    generation: int = field(default=0, init=False)  # replacements so far

    def text(self, key: str, **values: object) -> str:
        return self.texts[key].format(**{k: str(v) for k, v in values.items()})

    def replace_with(self, other: ChatContent) -> None:
        """Take `other`'s content. No await happens here, so no coroutine sees half of it."""
        self.words, self.texts, self.commands = other.words, other.texts, other.commands
        self.replies, self.faqs, self.watch = other.replies, other.faqs, other.watch
        self.opt_out_tag = other.opt_out_tag
        self.generation += 1


class _File:
    """One TOML file being checked: problems carry its path and a line."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path, self.problems = path, problems
        self.source = path.read_text(encoding="utf-8")
        self.headers: dict[str, list[int]] = {}

    def load(self) -> dict[str, Any] | None:
        try:
            return tomllib.loads(self.source)
        except tomllib.TOMLDecodeError as exc:
            self.problem(toml_error_line(exc), f"not valid TOML: {exc}")
            return None

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def entry_line(self, table: str, index: int) -> int | None:
        """The line of the index-th [[table]] header."""
        if table not in self.headers:
            self.headers[table] = [n for n, line in enumerate(self.source.splitlines(), 1)
                                   if line.strip() == f"[[{table}]]"]
        lines = self.headers[table]
        return lines[index] if index < len(lines) else line_of(self.source, table)


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    return None


def _words(path: Path, problems: list[Problem],
           names: tuple[str, ...] = WORD_LISTS) -> dict[str, tuple[str, ...]]:
    """Named lists of words (chat/words.toml, chat/commands.toml), each one required."""
    file = _File(path, problems)
    data = file.load() or {}
    shipped = SHIPPED_CHAT / path.name
    missing = (LATER_WORDS & set(names)) - data.keys()
    if missing and path != shipped:  # a library's file from before these lists
        later = tomllib.loads(shipped.read_text(encoding="utf-8"))
        data = {**{k: later[k] for k in missing}, **data}
    words: dict[str, tuple[str, ...]] = {}
    for key in data:
        if key not in names:
            file.problem(line_of(file.source, key), f"unknown list {key!r}")
    for key in names:
        found = _strings(data.get(key, []))
        if found is None:
            file.problem(line_of(file.source, key), f"{key} must be a list of non-empty strings")
        words[key] = found or ()
    return words


def _texts(path: Path, problems: list[Problem]) -> dict[str, str]:
    file = _File(path, problems)
    data = file.load() or {}
    shipped = SHIPPED_CHAT / "texts.toml"
    missing = LATER_TEXTS - data.keys()
    if missing and path != shipped:
        later = tomllib.loads(shipped.read_text(encoding="utf-8"))
        data = {**{k: later[k] for k in missing}, **data}
    for key in data:
        if key not in TEXT_FIELDS:
            file.problem(line_of(file.source, key), f"unknown text {key!r}")
    texts = {}
    for key, allowed in TEXT_FIELDS.items():
        value, line = data.get(key), line_of(file.source, key)
        if not isinstance(value, str) or not value.strip():
            file.problem(line, f"{key} is required (a non-empty string)")
            continue
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            file.problem(line, f"{key}: {exc}")
            continue
        for name in sorted(used - allowed):
            file.problem(line, f"{key}: unknown placeholder {{{name}}}")
        texts[key] = value.strip()
    return texts


def _opt_out_tag(path: Path, problems: list[Problem]) -> str:
    """chat/opt_out.toml: `tag`, the tag name (declared in tags.toml) or "" for none."""
    file = _File(path, problems)
    data = file.load() or {}
    for key in data:
        if key != "tag":
            file.problem(line_of(file.source, key), f"unknown key {key!r}")
    tag = data.get("tag", "")
    if not isinstance(tag, str) or len(tag.strip()) > 30:
        file.problem(line_of(file.source, "tag"), "tag must be a tag name (0-30 characters)")
        return ""
    return tag.strip()


def _watch_rules(path: Path, problems: list[Problem]) -> tuple[WatchRule, ...]:
    """chat/watch_words.toml: [[rules]] with a unique name, words, applies and level."""
    file = _File(path, problems)
    data = file.load() or {}
    for key in data:
        if key != "rules":
            file.problem(line_of(file.source, key), f"unknown key {key!r}")
    raw = data.get("rules", [])
    rules: list[WatchRule] = []
    if not isinstance(raw, list):
        file.problem(line_of(file.source, "rules"), "rules must be [[rules]] tables")
        return ()
    names: set[str] = set()
    for index, item in enumerate(raw):
        line, before = file.entry_line("rules", index), len(file.problems)
        item = item if isinstance(item, dict) else {}
        for key in sorted(set(item) - WATCH_KEYS):
            file.problem(line, f"rules: unknown key {key!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 32:
            file.problem(line, "rules: name is required (1-32 characters)")
        elif name.strip() in names:
            file.problem(line, f"rules: duplicate name {name.strip()!r}")
        words = _strings(item.get("words"))
        if not words:
            file.problem(line, "rules: words must be a non-empty list of non-empty strings")
        elif any(len(w) > 32 for w in words):
            file.problem(line, "rules: a word has at most 32 characters")
        applies = item.get("applies")
        if (not isinstance(applies, list) or not applies
                or any(a not in WATCH_WHO for a in applies)):
            file.problem(line, 'rules: applies must list "servicer" and/or "customer"')
        level = item.get("level")
        if level not in WATCH_LEVELS:
            file.problem(line, f'rules: level must be "warn" or "alert", got {level!r}')
        if len(file.problems) > before:
            continue
        names.add(str(name).strip())
        rules.append(WatchRule(str(name).strip(), tuple(dict.fromkeys(applies or ())),
                               str(level), words or ()))
    return tuple(rules)


def _entries(folder: Path, table: str, problems: list[Problem],
             build: Callable[[_File, int, dict[str, Any]], Any]) -> list[Any]:
    out = []
    for path in sorted(folder.glob("*.toml")):
        file = _File(path, problems)
        data = file.load()
        if data is None:
            continue
        for key in data:
            if key != table:
                file.problem(line_of(file.source, key), f"unknown key {key!r}")
        raw = data.get(table, [])
        if not isinstance(raw, list) or not raw:
            file.problem(line_of(file.source, table), f"needs at least one [[{table}]]")
            continue
        for index, item in enumerate(raw):
            built = build(file, index, item) if isinstance(item, dict) else None
            if built is not None:
                out.append(built)
    return out


def _reply(messages: set[str]) -> Callable[[_File, int, dict[str, Any]], ReplyRule | None]:
    def build(file: _File, index: int, item: dict[str, Any]) -> ReplyRule | None:
        line, before = file.entry_line("replies", index), len(file.problems)
        for key in sorted(set(item) - REPLY_KEYS):
            file.problem(line, f"replies: unknown key {key!r}")
        keywords = _strings(item.get("keywords"))
        if not keywords:
            file.problem(line, "replies: keywords must be a non-empty list of strings")
        message = item.get("message")
        if not isinstance(message, str) or message not in messages:
            file.problem(line, f"replies: message {message!r} is not in messages/")
        max_chars = item.get("max_chars", 0)
        if not isinstance(max_chars, int) or max_chars < 0:
            file.problem(line, "replies: max_chars must be a whole number ≥ 0")
        if len(file.problems) > before:
            return None
        rule_id = str(item.get("id") or f"{file.path.stem}.{index + 1}")
        return ReplyRule(rule_id, keywords or (), str(message), int(max_chars))

    return build


def _faq(file: _File, index: int, item: dict[str, Any]) -> FaqEntry | None:
    line, before = file.entry_line("entries", index), len(file.problems)
    for key in sorted(set(item) - FAQ_KEYS):
        file.problem(line, f"entries: unknown key {key!r}")
    for key in ("id", "question", "answer"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            file.problem(line, f"entries: {key} is required (a non-empty string)")
    keywords = _strings(item.get("keywords", []))
    if keywords is None:
        file.problem(line, "entries: keywords must be a list of non-empty strings")
    if len(file.problems) > before:
        return None
    return FaqEntry(item["id"], item["question"].strip(), item["answer"].strip(), keywords or ())


def catalog_problems(path: Path, problems: list[Problem]) -> None:
    """The keys chat reads (price_fen, stock, description, attributes) and the required ones."""
    if not path.exists():
        return
    file = _File(path, problems)
    data = file.load() or {}
    products = data.get("products", [])
    for index, item in enumerate(products if isinstance(products, list) else []):
        line = file.entry_line("products", index)
        for key in ("sku", "name"):
            if not isinstance(item.get(key), str) or not item[key]:
                file.problem(line, f"products: {key} is required (a non-empty string)")
        price = item.get("price_fen", 0)
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            file.problem(line, "products: price_fen must be a whole number of fen ≥ 0")
        for key, kind in PRODUCT_CHAT_KEYS.items():
            if key in item and not isinstance(item[key], kind):
                file.problem(line, f"products: {key} must be a {kind.__name__}")
        if isinstance(item.get("stock"), int) and item["stock"] < 0:
            file.problem(line, "products: stock must be ≥ 0")
        attributes = item.get("attributes", {})
        if isinstance(attributes, dict) and not all(isinstance(v, str)
                                                    for v in attributes.values()):
            file.problem(line, "products: attribute values must be strings")


def _unique(items: Iterable[Any], what: str, problems: list[Problem], root: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            problems.append(Problem(root, None, f"{what}: duplicate id {item.id!r}"))
        seen.add(item.id)


# The word lists, commands and texts guidebot ships: used for each file a library's chat/
# does not have (a library made before chat existed, or by `guidebot init`).
SHIPPED_CHAT = Path(__file__).resolve().parents[1] / "templates" / "chat"


def chat_file(root: Path, name: str) -> Path:
    own = root / CHAT_DIR / name
    return own if own.exists() else SHIPPED_CHAT / name


def load_chat_content(root: Path, messages: set[str], *, catalog: bool = True) -> ChatContent:
    """Raises ContentInvalid listing every problem (file:line); with `catalog`, catalog.toml's
    chat keys are among them (a reload checks the catalog on its own: content/reload.py)."""
    problems: list[Problem] = []
    words = _words(chat_file(root, "words.toml"), problems)
    commands = _words(chat_file(root, "commands.toml"), problems, COMMANDS)
    texts = _texts(chat_file(root, "texts.toml"), problems)
    opt_out_tag = _opt_out_tag(chat_file(root, "opt_out.toml"), problems)
    watch = _watch_rules(chat_file(root, "watch_words.toml"), problems)
    replies = _entries(root / "replies", "replies", problems, _reply(messages))
    faqs = _entries(root / "faq", "entries", problems, _faq)
    _unique(replies, "replies", problems, root / "replies")
    _unique(faqs, "faq", problems, root / "faq")
    if catalog:
        catalog_problems(root / "catalog.toml", problems)
    if problems:
        raise ContentInvalid(problems)
    return ChatContent(words, texts, tuple(replies), tuple(faqs), commands, opt_out_tag,
                       watch)
