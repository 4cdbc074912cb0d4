"""Who gets the credit for a paid order: DESIGN §5.4 as pure functions over touches/bindings."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from guidebot.commerce.rules import RuleSet, half_up
from guidebot.contacts import binding as binding_rules

NONE = "none"  # no rule in the precedence matched


class TouchFact(NamedTuple):
    guide: str
    at: datetime
    token: str
    kind: str = "visit"  # visit | order (an order's tracking token, at its paid_at)
    id: int | None = None  # None: the order's own token, not yet recorded

    def rank(self) -> tuple[datetime, bool, float]:
        """Later wins; at the same instant an order's token beats a visit, the order's own
        (unrecorded) token beats recorded ones, then the later-recorded one wins."""
        return self.at, self.kind == "order", math.inf if self.id is None else self.id


class BindingFact(NamedTuple):
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


class Attribution(NamedTuple):
    rule: str
    guide: str | None
    store_id: str | None
    evidence: dict[str, Any]  # what decided: the touch, binding or store


class Line(NamedTuple):
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
    return max(inside, key=TouchFact.rank) if inside else None


def binding_at(rules: RuleSet, paid_at: datetime,
               bindings: Sequence[BindingFact]) -> BindingFact | None:
    validity = rules.binding_validity_days
    valid = [b for b in bindings if binding_rules.valid_at(b.period(), paid_at, validity)]
    return max(valid, key=lambda b: (b.started_at, b.id or 0)) if valid else None


def attribute(rules: RuleSet, *, paid_at: datetime, store_id: str | None,
              touches: Sequence[TouchFact], bindings: Sequence[BindingFact]) -> Attribution:
    """Walk the precedence; the first rule that finds someone decides. The evidence names
    what decided and the rules skipped before it (and why)."""
    decided = decide(rules, paid_at=paid_at, store_id=store_id,
                     touch=latest_touch(rules, paid_at, touches), bindings=bindings)
    return Attribution(decided.rule, decided.guide, store_id,
                       {**decided.evidence, "skipped": skipped(rules, decided.rule)})


def decide(rules: RuleSet, *, paid_at: datetime, store_id: str | None,
           touch: TouchFact | None, bindings: Sequence[BindingFact]) -> Attribution:
    """The precedence walk given the latest touch in the window (found by the caller: a scan
    in the per-order path, a bisect in the bulk path). Evidence: only what decided."""
    for rule in rules.precedence:
        if rule == "share_link" and touch is not None:
            return Attribution(rule, touch.guide, store_id, {"touch": {
                "id": touch.id, "token": touch.token, "kind": touch.kind,
                "at": touch.at.isoformat(), "guide": touch.guide}})
        if rule == "exclusive_guide":
            bound = binding_at(rules, paid_at, bindings)
            if bound is not None:
                return Attribution(rule, bound.guide, store_id, {"binding": {
                    "id": bound.id, "guide": bound.guide, "started_at": _iso(bound.started_at),
                    "ended_at": _iso(bound.ended_at)}})
        if rule == "store" and store_id:
            return Attribution(rule, None, store_id, {"store": store_id})
    return Attribution(NONE, None, store_id, {})


def skipped(rules: RuleSet, rule: str) -> list[dict[str, str]]:
    """The rules walked past before `rule` decided (all of them for none), with why."""
    order = list(rules.precedence)
    passed = order[:order.index(rule)] if rule in order else order
    return [{"rule": r, "reason": _why_not(r, rules)} for r in passed]


def _why_not(rule: str, rules: RuleSet) -> str:
    if rule == "share_link":
        return f"no tracked touch within {rules.share_link_window_days} days before paid_at"
    if rule == "exclusive_guide":
        return "no binding valid at paid_at"
    return "the order names no store"


_line = functools.partial(tuple.__new__, Line)  # Line(...) without its Python-level __new__


def price_lines(rules: RuleSet, items: Sequence[Item], *, earns: bool) -> list[Line]:
    """Per-item commission, half-up per line; zero when no guide is credited."""
    lines = []
    for item in items:
        rate = rules.rate_for(item.sku, item.category)
        fen = half_up(item.amount_fen, rate) if earns else 0
        lines.append(_line((item.sku, item.category, item.quantity, item.amount_fen, rate, fen)))
    return lines
