"""Prompts as pure functions: the grounded reply and the guide's reply suggestions. The
wording lives in guidebot/templates/llm_prompts.toml."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

from guidebot.llm.client import Message

PROMPTS_FILE = Path(__file__).resolve().parents[1] / "templates" / "llm_prompts.toml"
HANDOFF_MARKER = "HANDOFF"
MAX_SUGGESTIONS = 3
MIN_CLAUSE = 8
_CLAUSE = re.compile(r"[。！？；，,;]")
_NUMBERED = re.compile(r"^\s*(?:[1-9][.、．)）]|[-*•])\s*")


@dataclass(frozen=True)
class FaqFact:
    id: str
    question: str
    answer: str


@dataclass(frozen=True)
class ProductFact:
    sku: str
    name: str
    category: str
    price: str                      # already formatted from fen, e.g. "¥299"
    stock: int | None = None
    description: str = ""
    attributes: tuple[tuple[str, str], ...] = ()


@lru_cache(maxsize=1)
def templates() -> dict[str, str]:
    return dict(tomllib.loads(PROMPTS_FILE.read_text(encoding="utf-8")))


def _fill(key: str, **values: object) -> str:
    return Template(templates()[key]).substitute({k: str(v) for k, v in values.items()})


def product_line(p: ProductFact) -> str:
    stock = _fill("stock_part", stock=p.stock) if p.stock is not None else ""
    description = _fill("description_part", description=p.description) if p.description else ""
    attributes = (_fill("attributes_part", attributes="；".join(f"{k}={v}"
                                                               for k, v in p.attributes))
                  if p.attributes else "")
    return _fill("product_line", name=p.name, sku=p.sku, category=p.category, price=p.price,
                 stock=stock, description=description, attributes=attributes)


def facts_text(faqs: Sequence[FaqFact], products: Sequence[ProductFact]) -> str:
    """The grounding as the model sees it; numbers in an answer are checked against it."""
    lines = [_fill("faq_line", question=f.question, answer=f.answer) for f in faqs]
    lines += [product_line(p) for p in products]
    return "\n".join(lines) if lines else templates()["no_facts"]


def rule_lines() -> tuple[str, ...]:
    """The clauses of both prompts' fixed lines (no placeholders): an answer repeating one
    leaked the prompt."""
    return tuple(clause.strip() for name in ("system", "suggest")
                 for line in templates()[name].splitlines() if "$" not in line
                 for clause in _CLAUSE.split(line) if len(clause.strip()) >= MIN_CLAUSE)


def grounded_reply(*, canary: str, facts: str, question: str) -> list[Message]:
    return [Message("system", _fill("system", canary=canary, facts=facts)),
            Message("user", question)]


def reply_suggestions(*, canary: str, facts: str, customer_message: str) -> list[Message]:
    return [Message("system", _fill("suggest", canary=canary, facts=facts)),
            Message("user", customer_message)]


def parse_suggestions(text: str) -> list[str]:
    """Up to three non-empty lines, numbering removed."""
    lines = [_NUMBERED.sub("", line).strip() for line in text.splitlines()]
    return [line for line in lines if line][:MAX_SUGGESTIONS]


def declined(text: str) -> bool:
    return text.strip().strip("。.！!").upper() == HANDOFF_MARKER
