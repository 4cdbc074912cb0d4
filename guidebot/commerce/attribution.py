"""Who gets the credit for a paid order: DESIGN §5.4 as pure functions over touches/bindings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from guidebot.commerce.rules import RuleSet, half_up
from guidebot.contacts import binding as binding_rules

NONE = "none"  # no rule in the precedence matched


@dataclass(frozen=True)
class TouchFact:
    guide: str
    at: datetime
    token: str
    kind: str = "visit"  # visit | order (the order's own tracking token, at paid_at)
    id: int | None = None


@dataclass(frozen=True)
class BindingFact:
    guide: str
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str = ""
    id: int | None = None

    def period(self) -> binding_rules.Period:
        return binding_rules.Period(self.guide, self.started_at, self.ended_at, self.end_reason)


@dataclass(frozen=True)
class Item:
    sku: str
    category: str
    amount_fen: int
    quantity: int = 1


@dataclass(frozen=True)
class Attribution:
    rule: str
    guide: str | None
    store_id: str | None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Line:
    sku: str
    category: str
    quantity: int
    amount_fen: int
    rate: str
    commission_fen: int


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def latest_touch(rules: RuleSet, paid_at: datetime,
                 touches: Sequence[TouchFact]) -> TouchFact | None:
    """The latest touch at or before paid_at and at most window days before (inclusive)."""
    start = paid_at - timedelta(days=rules.share_link_window_days)
    inside = [t for t in touches if start <= t.at <= paid_at]
    if not inside:
        return None
    # At the same instant the order's own token wins, then the later-recorded touch.
    return max(inside, key=lambda t: (t.at, t.kind == "order", t.id or 0))


def binding_at(rules: RuleSet, paid_at: datetime,
               bindings: Sequence[BindingFact]) -> BindingFact | None:
    valid = [b for b in bindings
             if binding_rules.valid_at(b.period(), paid_at, rules.binding_validity_days)]
    return max(valid, key=lambda b: (b.started_at, b.id or 0)) if valid else None


def attribute(rules: RuleSet, *, paid_at: datetime, store_id: str | None,
              touches: Sequence[TouchFact], bindings: Sequence[BindingFact]) -> Attribution:
    """Walk the precedence; the first rule that finds someone decides, with its evidence."""
    skipped: list[dict[str, str]] = []
    for rule in rules.precedence:
        found = _apply(rule, rules, paid_at, store_id, touches, bindings)
        if found is not None:
            return Attribution(rule, found[0], store_id, {**found[1], "skipped": skipped})
        skipped.append({"rule": rule, "reason": _why_not(rule, rules)})
    return Attribution(NONE, None, store_id, {"skipped": skipped})


def _apply(rule: str, rules: RuleSet, paid_at: datetime, store_id: str | None,
           touches: Sequence[TouchFact],
           bindings: Sequence[BindingFact]) -> tuple[str | None, dict[str, Any]] | None:
    if rule == "share_link":
        touch = latest_touch(rules, paid_at, touches)
        if touch is None:
            return None
        return touch.guide, {"touch": {"id": touch.id, "token": touch.token, "kind": touch.kind,
                                       "at": _iso(touch.at), "guide": touch.guide}}
    if rule == "exclusive_guide":
        bound = binding_at(rules, paid_at, bindings)
        if bound is None:
            return None
        return bound.guide, {"binding": {"id": bound.id, "guide": bound.guide,
                                         "started_at": _iso(bound.started_at),
                                         "ended_at": _iso(bound.ended_at)}}
    if rule == "store" and store_id:
        return None, {"store": store_id}
    return None


def _why_not(rule: str, rules: RuleSet) -> str:
    if rule == "share_link":
        return f"no tracked touch within {rules.share_link_window_days} days before paid_at"
    if rule == "exclusive_guide":
        return "no binding valid at paid_at"
    return "the order names no store"


def price_lines(rules: RuleSet, items: Sequence[Item], *, earns: bool) -> list[Line]:
    """Per-item commission, half-up per line; zero when no guide is credited."""
    lines = []
    for item in items:
        rate = rules.rate_for(item.sku, item.category)
        fen = half_up(item.amount_fen, rate) if earns else 0
        lines.append(Line(item.sku, item.category, item.quantity, item.amount_fen, rate, fen))
    return lines
