"""Property: for any orders, refunds (early, late, over-refunding) and replays, the ledger is
Σ half-up(amount × rate) − Σ clawbacks, nothing is counted twice and no order goes below zero.
Runs the real OrderService on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from guidebot.commerce.attribution import Item
from guidebot.commerce.rules import RuleSet, half_up
from guidebot.commerce.schema import CustomerRef, PaidOrder, RefundEvent
from guidebot.db.engine import Database
from guidebot.db.repo import commerce_ledger
from guidebot.services import build_services
from guidebot.settings import CommissionSettings, load_settings
from tests.support import commerce as commerce_support
from tests.support.commerce import DB_PROPERTIES
from tests.support.stack import write_config

COMMISSION = CommissionSettings(default_rate="0.03", rates={"category:beauty": "0.05",
                                                           "sku:A": "0.08"})
RULES = RuleSet.from_settings(COMMISSION)
PAID = datetime(2026, 11, 10, tzinfo=UTC)
RUN = itertools.count()

items = st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from(["beauty", ""]),
                           st.one_of(st.integers(0, 120), st.integers(0, 50_000))),
                 min_size=1, max_size=3, unique_by=lambda t: t[0])


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    orders = []
    for n in range(draw(st.integers(1, 3))):
        lines = draw(items)
        refunds = draw(st.lists(st.lists(st.tuples(
            st.sampled_from([s for s, _, _ in lines] + ["Z"]),
            st.one_of(st.integers(1, 80), st.integers(1, 60_000))),
            min_size=1, max_size=2), max_size=3))
        orders.append({"no": n, "credited": draw(st.booleans()), "lines": lines,
                       "refunds": refunds})
    events = [("order", o["no"], None) for o in orders]
    events += [("refund", o["no"], r) for o in orders for r in range(len(o["refunds"]))]
    order = draw(st.permutations(events))
    replays = draw(st.lists(st.sampled_from(events), max_size=4))
    positions = [draw(st.integers(0, len(order))) for _ in replays]
    sequence = list(order)
    for event, at in zip(replays, positions, strict=True):
        sequence.insert(at, event)
    return {"orders": orders, "sequence": sequence}


def _expected(scenario: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """order → (earned, clawed back), applying refunds as the service must: held ones in
    refunded_at order when the order arrives, later ones as they come; each line gives back at
    most its amount and its commission."""
    orders = {o["no"]: o for o in scenario["orders"]}
    state: dict[int, dict[str, Any]] = {}
    held: dict[int, list[int]] = {n: [] for n in orders}
    seen: set[tuple[str, int, int | None]] = set()

    def apply(n: int, r: int) -> None:
        st_ = state[n]
        for sku, amount in orders[n]["refunds"][r]:
            if sku not in st_["left"]:
                continue
            take = min(amount, st_["left"][sku])
            st_["left"][sku] -= take
            claw = min(half_up(take, st_["rate"][sku]) if take else 0, st_["comm"][sku])
            st_["comm"][sku] -= claw
            st_["clawed"] += claw

    for kind, n, r in scenario["sequence"]:
        if (kind, n, r) in seen:
            continue
        seen.add((kind, n, r))
        o = orders[n]
        if kind == "refund" and n not in state:
            held[n].append(r)  # type: ignore[arg-type]
        elif kind == "refund":
            apply(n, r)  # type: ignore[arg-type]
        else:
            rate = {s: RULES.rate_for(s, c) for s, c, _ in o["lines"]}
            comm = {s: half_up(a, rate[s]) if o["credited"] else 0 for s, _, a in o["lines"]}
            state[n] = {"left": {s: a for s, _, a in o["lines"]}, "rate": rate, "comm": comm,
                        "earned": sum(comm.values()), "clawed": 0}
            for held_r in sorted(held[n]):
                apply(n, held_r)
    return {n: (s["earned"], s["clawed"]) for n, s in state.items()}


async def _run(url: str, folder: Path, scenario: dict[str, Any]) -> None:
    base = load_settings(write_config(folder, url))
    tenant = replace(base.tenant("acme"), commission=COMMISSION)
    settings = replace(base, tenants={"acme": tenant})
    db = Database(url)
    services = build_services(settings, db)
    run = next(RUN)
    try:
        link = await services.commerce.links.create(
            tenant, _link_request())
        prefix = f"P{run}-"
        for kind, n, r in scenario["sequence"]:
            o = scenario["orders"][n]
            if kind == "order":
                event = PaidOrder(f"{prefix}{n}", PAID, CustomerRef(f"wm{prefix}{n}"),
                                  link["token"] if o["credited"] else "", "S01",
                                  tuple(Item(s, c, a) for s, c, a in o["lines"]))
                await services.commerce.orders.paid(tenant, event, resolve_remote=False)
            else:
                refund = RefundEvent(f"{prefix}{n}", f"{prefix}{n}-R{r}",
                                     PAID + timedelta(minutes=r + 1), tuple(o["refunds"][r]))
                await services.commerce.orders.refunded(tenant, refund)
        async with db.read() as s:
            entries = [e for e in await commerce_ledger.entries(s, tenant="acme")
                       if (e.order_no or "").startswith(prefix)]
    finally:
        await services.close()
        await db.dispose()
    _check(scenario, prefix, entries)


def _check(scenario: dict[str, Any], prefix: str, entries: list[Any]) -> None:
    expected = _expected(scenario)
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys))  # nothing counted twice
    for n, (earned, clawed) in expected.items():
        mine = [e for e in entries if e.order_no == f"{prefix}{n}"]
        earns = [e.amount_fen for e in mine if e.kind == "earn"]
        claws = [e.amount_fen for e in mine if e.kind == "clawback"]
        credited = scenario["orders"][n]["credited"]
        assert earns == ([earned] if credited else [])
        assert all(c < 0 for c in claws)
        assert -sum(claws) == clawed
        assert sum(earns) + sum(claws) >= 0  # no order's net below zero
    assert sum(e.amount_fen for e in entries) == sum(a - b for a, b in expected.values())


def _link_request() -> Any:
    from guidebot.commerce.links import LinkRequest

    return LinkRequest(guide="g1", sku="A", title="t")


migrated = commerce_support.migrated  # the fixture


@DB_PROPERTIES
@given(scenario=scenarios())
@example(scenario={  # two half-up refunds (2 + 2 fen) of a 3-fen line: capped at 3
    "orders": [{"no": 0, "credited": True, "lines": [("B", "", 100)],
                "refunds": [[("B", 50)], [("B", 50)]]}],
    "sequence": [("refund", 0, 1), ("order", 0, None), ("refund", 0, 0), ("refund", 0, 1)]})
def test_ledger_equals_formula_for_any_delivery_order(migrated: str, tmp_path: Path,
                                                      scenario: dict[str, Any]) -> None:
    asyncio.run(_run(migrated, tmp_path, scenario))
