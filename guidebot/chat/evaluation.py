"""The reply-routing evaluation: JSONL cases (message, expected route, must / must-not
content), run through a router, scored per category."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guidebot.chat.decision import CustomerContext, Decision, Inbound, ReplyRouter, Route


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    text: str
    route: Route
    must: tuple[str, ...] = ()
    must_not: tuple[str, ...] = ()
    card_sku: str | None = None
    customer_name: str = ""
    recent_skus: tuple[str, ...] = ()
    model: dict[str, Any] | None = None  # the scripted model answer (local test server only)

    @property
    def deterministic(self) -> bool:
        """The outcome does not depend on what a model answers."""
        return self.model is None


@dataclass(frozen=True)
class Result:
    case: Case
    decision: Decision
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    def rate(self, results: Iterable[Result] | None = None) -> float:
        chosen = list(self.results if results is None else results)
        return sum(r.passed for r in chosen) / len(chosen) if chosen else 1.0

    def by_category(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in self.results:
            out[r.case.category][0] += r.passed
            out[r.case.category][1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    def deterministic(self) -> list[Result]:
        return [r for r in self.results if r.case.deterministic]


def load_cases(path: Path) -> list[Case]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        raw = json.loads(line)
        try:
            cases.append(Case(
                id=raw["id"], category=raw["category"], text=raw["text"],
                route=Route(raw["route"]), must=tuple(raw.get("must", ())),
                must_not=tuple(raw.get("must_not", ())), card_sku=raw.get("card_sku"),
                customer_name=raw.get("customer_name", ""),
                recent_skus=tuple(raw.get("recent_skus", ())), model=raw.get("model")))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {exc!r}") from None
    return cases


def check(case: Case, decision: Decision) -> tuple[str, ...]:
    failures = []
    if decision.route != case.route:
        failures.append(f"route {decision.route} ({decision.reason}), expected {case.route}")
    said = f"{decision.text}\n{decision.summary}"  # the summary goes to the guide
    failures += [f"missing {m!r}" for m in case.must if m not in said]
    failures += [f"sends {m!r}" for m in case.must_not if m in decision.text]
    if case.card_sku is not None and decision.card_sku != case.card_sku:
        failures.append(f"card {decision.card_sku}, expected {case.card_sku}")
    return tuple(failures)


async def evaluate(router: ReplyRouter, cases: Iterable[Case], *,
                   tenant: str = "eval") -> Report:
    report = Report()
    for n, case in enumerate(cases):
        customer = CustomerContext(f"wm-eval-{n}", name=case.customer_name,
                                   recent_skus=case.recent_skus)
        decision = await router.decide(Inbound(tenant, "wk-eval", f"eval-{case.id}", case.text,
                                               customer))
        report.results.append(Result(case, decision, check(case, decision)))
    return report
