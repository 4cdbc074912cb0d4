"""DESIGN §5.4 attribution, table-driven over every rule, precedence and edge."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from guidebot.commerce.attribution import (
    NONE,
    BindingFact,
    Item,
    TouchFact,
    attribute,
    price_lines,
)
from guidebot.commerce.rules import RuleSet, half_up

PAID = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
RULES = RuleSet(("share_link", "exclusive_guide", "store"), 7, 30, 0, "0.03",
                (("category:beauty", "0.05"), ("sku:SKU-LIP", "0.08")))


def _rules(**changes: object) -> RuleSet:
    return replace(RULES, **changes)  # type: ignore[arg-type]


def _who(rules: RuleSet = RULES, touches: tuple[TouchFact, ...] = (),
         bindings: tuple[BindingFact, ...] = (),
         store: str | None = "S01") -> tuple[str, str | None]:
    result = attribute(rules, paid_at=PAID, store_id=store, touches=touches, bindings=bindings)
    return result.rule, result.guide


# --- every precedence (ordered subsets) × every combination of available evidence ----------
AVAILABLE = {
    "share_link": dict(touches=(TouchFact("toucher", PAID - DAY, "tok1", id=1),)),
    "exclusive_guide": dict(bindings=(BindingFact("bound", PAID - 40 * DAY, id=1),)),
}
PRECEDENCES = [p for n in (1, 2, 3)
               for p in itertools.permutations(("share_link", "exclusive_guide", "store"), n)]
EXPECTED_GUIDE = {"share_link": "toucher", "exclusive_guide": "bound", "store": None}


PRESENT = [frozenset(c) for n in range(4)
           for c in itertools.combinations(("share_link", "exclusive_guide", "store"), n)]


@pytest.mark.parametrize("precedence", PRECEDENCES, ids="-".join)
@pytest.mark.parametrize("present", PRESENT, ids=lambda s: "+".join(sorted(s)) or "none")
def test_first_rule_with_evidence_in_precedence_decides(precedence: tuple[str, ...],
                                                        present: frozenset[str]) -> None:
    kwargs: dict[str, object] = {"store": "S01" if "store" in present else None}
    for rule in ("share_link", "exclusive_guide"):
        if rule in present:
            kwargs.update(AVAILABLE[rule])
    expected_rule = next((r for r in precedence if r in present), NONE)
    rule, guide = _who(_rules(precedence=precedence), **kwargs)  # type: ignore[arg-type]
    assert rule == expected_rule
    assert guide == EXPECTED_GUIDE.get(expected_rule)


# --- share_link window edges ---------------------------------------------------------------
@pytest.mark.parametrize(("touched", "expected"), [
    (PAID, "share_link"),                           # at paid_at
    (PAID - 7 * DAY, "share_link"),                 # exactly N days before: inside
    (PAID - 7 * DAY - SECOND, "exclusive_guide"),   # one second older: outside
    (PAID + SECOND, "exclusive_guide"),             # after payment never counts
])
def test_share_link_window_edges(touched: datetime, expected: str) -> None:
    touch = TouchFact("toucher", touched, "t", id=1)
    binding = BindingFact("bound", PAID - 100 * DAY, id=1)
    assert _who(touches=(touch,), bindings=(binding,))[0] == expected


def test_window_follows_the_rules_version() -> None:
    touch = TouchFact("toucher", PAID - 10 * DAY, "t", id=1)
    assert _who(touches=(touch,))[0] == "store"
    assert _who(_rules(share_link_window_days=10), touches=(touch,)) == ("share_link", "toucher")


def test_latest_touch_wins_and_order_token_wins_a_tie() -> None:
    older = TouchFact("first", PAID - 3 * DAY, "a", id=1)
    newer = TouchFact("second", PAID - DAY, "b", id=2)
    assert _who(touches=(newer, older))[1] == "second"
    visit = TouchFact("visitor", PAID, "c", id=9)
    token = TouchFact("sharer", PAID, "d", kind="order")
    assert _who(touches=(visit, token))[1] == "sharer"


def test_the_orders_own_token_beats_a_recorded_order_token_at_the_same_instant() -> None:
    recorded = TouchFact("earlier-order", PAID, "e", kind="order", id=77)
    own = TouchFact("own", PAID, "o", kind="order")  # not recorded yet: id None
    later = TouchFact("later-order", PAID, "l", kind="order", id=78)
    assert _who(touches=(recorded, own, later))[1] == "own"
    assert _who(touches=(recorded, later))[1] == "later-order"  # then the later-recorded


def test_evidence_names_the_touch_and_skipped_rules() -> None:
    touch = TouchFact("toucher", PAID - DAY, "tok9", id=42)
    result = attribute(_rules(precedence=("exclusive_guide", "share_link")), paid_at=PAID,
                       store_id=None, touches=(touch,), bindings=())
    assert result.evidence["touch"]["id"] == 42 and result.evidence["touch"]["token"] == "tok9"
    assert [s["rule"] for s in result.evidence["skipped"]] == ["exclusive_guide"]


# --- exclusive_guide: validity, deletion, transfer ------------------------------------------
@pytest.mark.parametrize(("binding", "validity", "expected"), [
    (BindingFact("bound", PAID - 5 * DAY), 0, "bound"),
    (BindingFact("bound", PAID + SECOND), 0, None),                      # starts after payment
    (BindingFact("bound", PAID - 30 * DAY), 30, None),                   # exactly N days: ended
    (BindingFact("bound", PAID - 30 * DAY + SECOND), 30, "bound"),       # one second inside
    (BindingFact("bound", PAID - 400 * DAY), 0, "bound"),                # 0 = permanent
    (BindingFact("bound", PAID - 9 * DAY, PAID - DAY, "customer_deleted"), 0, None),
    (BindingFact("bound", PAID - 9 * DAY, PAID, "customer_deleted"), 0, None),  # deleted at paid
    (BindingFact("bound", PAID - 9 * DAY, PAID + SECOND, "customer_deleted"), 0, "bound"),
    (BindingFact("bound", PAID - 9 * DAY, None, "transfer_pending"), 0, "bound"),
])
def test_binding_valid_at_paid_at(binding: BindingFact, validity: int,
                                  expected: str | None) -> None:
    rules = _rules(precedence=("exclusive_guide",), binding_validity_days=validity)
    assert _who(rules, bindings=(binding,))[1] == expected


@pytest.mark.parametrize(("transfer_at", "expected"), [
    (PAID - DAY, "takeover"), (PAID, "takeover"), (PAID + SECOND, "handover")])
def test_completed_transfer_moves_credit_from_its_time(transfer_at: datetime,
                                                       expected: str) -> None:
    bindings = (BindingFact("handover", PAID - 60 * DAY, transfer_at, "transferred", id=1),
                BindingFact("takeover", transfer_at, id=2))
    assert _who(_rules(precedence=("exclusive_guide",)), bindings=bindings)[1] == expected


def test_no_rule_and_no_store_is_none() -> None:
    assert _who(store=None) == (NONE, None)


# --- rates and rounding --------------------------------------------------------------------
@pytest.mark.parametrize(("sku", "category", "rate"), [
    ("SKU-LIP", "beauty", "0.08"), ("SKU-LIP", "", "0.08"), ("SKU-2", "beauty", "0.05"),
    ("SKU-2", "shoes", "0.03"), ("SKU-2", "", "0.03")])
def test_rate_sku_beats_category_beats_default(sku: str, category: str, rate: str) -> None:
    assert RULES.rate_for(sku, category) == rate


@pytest.mark.parametrize(("amount", "rate", "fen"), [
    (50, "0.03", 2), (49, "0.03", 1), (150, "0.03", 5), (16, "0.03", 0), (17, "0.03", 1),
    (19900, "0.03", 597), (9900, "0.05", 495), (1, "0.5", 1), (0, "0.08", 0),
    (33333, "0.015", 500), (12345, "0.123456", 1524)])
def test_half_up_per_line(amount: int, rate: str, fen: int) -> None:
    assert half_up(amount, rate) == fen


def test_lines_earn_only_when_a_guide_is_credited() -> None:
    items = [Item("SKU-LIP", "beauty", 10000), Item("X", "beauty", 333), Item("Y", "", 50)]
    assert [x.commission_fen for x in price_lines(RULES, items, earns=True)] == [800, 17, 2]
    assert [x.commission_fen for x in price_lines(RULES, items, earns=False)] == [0, 0, 0]
    assert [x.rate for x in price_lines(RULES, items, earns=False)] == ["0.08", "0.05", "0.03"]


def test_config_hash_is_canonical_and_changes_with_any_rule() -> None:
    same = RuleSet(RULES.precedence, 7, 30, 0, "0.03",
                   (("sku:SKU-LIP", "0.08"), ("category:beauty", "0.05")))
    assert RuleSet.from_json(same.to_json()) == RULES
    assert same.config_hash == RULES.config_hash
    assert _rules(default_rate="0.04").config_hash != RULES.config_hash
    assert _rules(protection_days=31).config_hash != RULES.config_hash


# --- the evidence, exactly: what a store backend and the console read ----------------------
def test_share_link_evidence_in_full() -> None:
    touch = TouchFact("toucher", PAID - DAY, "tok9", kind="order", id=42)
    result = attribute(RULES, paid_at=PAID, store_id="S01", touches=(touch,), bindings=())
    assert result == ("share_link", "toucher", "S01", {
        "touch": {"id": 42, "token": "tok9", "kind": "order",
                  "at": (PAID - DAY).isoformat(), "guide": "toucher"},
        "skipped": []})


def test_exclusive_guide_evidence_in_full_with_why_the_share_link_was_skipped() -> None:
    ended = BindingFact("old", PAID - 90 * DAY, PAID - 40 * DAY, "taken_over", id=3)
    bound = BindingFact("bound", PAID - 5 * DAY, PAID + DAY, "customer_deleted", id=7)
    result = attribute(RULES, paid_at=PAID, store_id="S01", touches=(), bindings=(ended, bound))
    assert result == ("exclusive_guide", "bound", "S01", {
        "binding": {"id": 7, "guide": "bound", "started_at": (PAID - 5 * DAY).isoformat(),
                    "ended_at": (PAID + DAY).isoformat()},
        "skipped": [{"rule": "share_link",
                     "reason": "no tracked touch within 7 days before paid_at"}]})
    open_ended = attribute(RULES, paid_at=PAID, store_id=None, touches=(),
                           bindings=(BindingFact("b", PAID - DAY, id=None),))
    assert open_ended.evidence["binding"] == {
        "id": None, "guide": "b", "started_at": (PAID - DAY).isoformat(), "ended_at": None}


def test_store_and_none_evidence_in_full() -> None:
    stale = TouchFact("toucher", PAID - 8 * DAY, "tok", id=1)
    result = attribute(RULES, paid_at=PAID, store_id="S01", touches=(stale,), bindings=())
    assert result == ("store", None, "S01", {"store": "S01", "skipped": [
        {"rule": "share_link", "reason": "no tracked touch within 7 days before paid_at"},
        {"rule": "exclusive_guide", "reason": "no binding valid at paid_at"}]})
    none = attribute(RULES, paid_at=PAID, store_id=None, touches=(), bindings=())
    assert none == (NONE, None, None, {"skipped": [
        {"rule": "share_link", "reason": "no tracked touch within 7 days before paid_at"},
        {"rule": "exclusive_guide", "reason": "no binding valid at paid_at"},
        {"rule": "store", "reason": "the order names no store"}]})
    window = _rules(share_link_window_days=3)
    assert attribute(window, paid_at=PAID, store_id="S01", touches=(), bindings=()
                     ).evidence["skipped"][0]["reason"] == \
        "no tracked touch within 3 days before paid_at"


def test_of_two_valid_bindings_the_later_start_then_the_higher_id_decides() -> None:
    rules = _rules(precedence=("exclusive_guide",))
    earlier = BindingFact("earlier", PAID - 9 * DAY, id=9)
    later = BindingFact("later", PAID - 2 * DAY, id=1)
    assert _who(rules, bindings=(later, earlier))[1] == "later"
    assert _who(rules, bindings=(earlier, later))[1] == "later"
    same_a = BindingFact("low-id", PAID - 2 * DAY, id=1)
    same_b = BindingFact("high-id", PAID - 2 * DAY, id=2)
    assert _who(rules, bindings=(same_b, same_a))[1] == "high-id"
    assert _who(rules, bindings=(same_a, same_b))[1] == "high-id"
    unrecorded = BindingFact("unrecorded", PAID - 2 * DAY, id=None)
    assert _who(rules, bindings=(unrecorded, same_a))[1] == "low-id"  # None counts as 0


def test_touch_rank_orders_instant_then_order_kind_then_recording() -> None:
    at = PAID - DAY
    visit_late = TouchFact("v", at, "t", "visit", 99)
    order_early = TouchFact("o", at, "t", "order", 1)
    own = TouchFact("own", at, "t", "order", None)
    assert visit_late.rank() < order_early.rank() < own.rank()
    assert TouchFact("x", at - SECOND, "t", "order", None).rank() < visit_late.rank()
    assert own.rank() == (at, True, float("inf"))
    assert visit_late.rank() == (at, False, 99)


def test_binding_fact_period_carries_every_field() -> None:
    fact = BindingFact("g", PAID - DAY, PAID, "customer_deleted", id=5)
    period = fact.period()
    assert (period.guide, period.started_at, period.ended_at, period.end_reason) == (
        "g", PAID - DAY, PAID, "customer_deleted")


def test_decide_keeps_the_orders_store_whichever_rule_decides() -> None:
    """The bulk path calls `decide` directly and stores its store_id."""
    from guidebot.commerce.attribution import decide

    touch = TouchFact("t", PAID - DAY, "tok", id=1)
    bound = BindingFact("b", PAID - DAY, id=2)
    for precedence, kwargs in [(("share_link",), {"touch": touch, "bindings": ()}),
                               (("exclusive_guide",), {"touch": None, "bindings": (bound,)}),
                               (("store",), {"touch": None, "bindings": ()}),
                               ((), {"touch": None, "bindings": ()})]:
        decided = decide(_rules(precedence=precedence), paid_at=PAID, store_id="S07",
                         **kwargs)  # type: ignore[arg-type]
        assert decided.store_id == "S07", precedence
