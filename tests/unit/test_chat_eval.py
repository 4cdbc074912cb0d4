"""The whole chat evaluation against a local OpenAI-compatible server (scripted answers per
case) through the real openai client: every case must pass."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from guidebot.chat.evaluation import evaluate, load_cases
from tests.support.chat import (
    TIMEOUT_S,
    build_router,
    routers_closed,  # noqa: F401  (the fixture)
    start_llm,
)
from tests.support.llm_server import Script
from tests.support.stack import ROOT, write_config

pytestmark = pytest.mark.usefixtures("routers_closed")

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


async def test_eval_script_reports_per_category(aiohttp_server: Any, tmp_path: Path) -> None:
    """scripts/eval_chat.py against the LLM its --config names (here the local server)."""
    cases = load_cases(CASES)
    fake, url = await start_llm(aiohttp_server)
    for case in cases:
        if case.model is not None:
            fake.scripts[case.text] = Script.of(case.model)
    extra = (f'\n[llm]\nbase_url = "{url}"\nmodel = "local-test"\napi_key = "sk-local"\n'
             f"timeout_s = {TIMEOUT_S}\n")
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
                          extra=extra)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "eval_chat.py"), "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = {line.split()[0]: line.split()[1:] for line in out.decode().splitlines()[2:]}
    assert set(lines) == {c.category for c in cases} | {"deterministic", "all"}
    assert lines["all"] == [str(len(cases)), str(len(cases)), "100%"]
    assert lines["invented_price"][-1] == "100%"
    assert len(fake.requests) >= 20  # the script's router asked the configured model
