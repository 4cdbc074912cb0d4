"""The whole chat evaluation against a local OpenAI-compatible server (scripted answers per
case) through the real openai client: every case must pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guidebot.chat.evaluation import evaluate, load_cases
from tests.support.chat import build_router, start_llm
from tests.support.llm_server import Script

CASES = Path(__file__).resolve().parents[1] / "data" / "chat_eval.jsonl"
CATEGORIES = {"price", "stock", "size", "delivery", "returns", "complaint", "handoff",
              "chitchat", "opt_out", "injection", "invented_price", "llm_failure"}


async def test_eval_passes_every_case(aiohttp_server: Any) -> None:
    cases = load_cases(CASES)
    assert len(cases) >= 60 and {c.category for c in cases} >= CATEGORIES
    fake, url = await start_llm(aiohttp_server)
    for case in cases:
        if case.model is not None:
            fake.scripts[case.text] = Script.of(case.model)
    report = await evaluate(build_router(url), cases)
    failed = [(r.case.id, r.failures) for r in report.results if not r.passed]
    assert failed == [], "\n".join(f"{i}: {f}" for i, f in failed)
    assert report.rate(report.deterministic()) == 1.0
    # the model was asked only where no rule, FAQ or catalog answer applied
    asked = {m["content"] for body in fake.requests for m in body["messages"]
             if m["role"] == "user"}
    assert asked == {c.text for c in cases if c.model is not None
                     and c.category != "injection" or c.id.startswith("leak-")}
