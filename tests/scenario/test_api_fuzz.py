"""Property-based fuzzing of every admin route, driven by schemathesis from the generated OpenAPI
document against the real app and sandbox on SQLite: no 5xx, every 4xx is JSON naming the field,
and nothing is stored or sent to WeCom on a 4xx. Derandomized with bounded examples."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy import func, select
from sqlmodel import SQLModel

from guidebot.db import models, models_api, models_commerce  # noqa: F401 - tables to count
from guidebot.web.api.document import document
from tests.support.stack import Stack, known, start_stack

EXAMPLES = 10  # per route and generation mode: ~300 requests
# WeCom calls that change something there (reads such as gettoken or the tag list may happen).
SENDING = ("add_contact_way", "mark_tag", "add_msg_template", "message/send",
           "send_welcome_msg", "add_moment_task", "add_corp_tag")


async def _counts(stack: Stack) -> dict[str, int]:
    tables = SQLModel.metadata.sorted_tables
    one_query = select(*[select(func.count()).select_from(t).scalar_subquery().label(t.name)
                         for t in tables])
    async with stack.runtime.services.db.read() as s:
        counts = dict((await s.execute(one_query)).one()._mapping)
    # A call WeCom refused changed nothing there (the sandbox keeps 10,000 calls: plenty).
    sent = [c for c in stack.calls() if c.get("errcode") == 0
            and any(c["path"].endswith(p) for p in SENDING)]
    counts["wecom_sent"] = len(sent)
    return counts


def _check_refusal(case: Any, response: Any, before: dict[str, int],
                   after: dict[str, int]) -> None:
    where = f"{case.method} {case.formatted_path} {case.query} {case.body!r}"
    body = response.json()  # a refusal is JSON
    assert isinstance(body, dict) and body.get("field"), (where, body)
    assert isinstance(body.get("reason"), str) and body["reason"], (where, body)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, (where, response.status_code, body, changed)


def _fuzz(stack: Stack, loop: asyncio.AbstractEventLoop, mode: GenerationMode) -> int:
    schema = schemathesis.openapi.from_dict(document())
    auth = {"Authorization": f"Bearer {stack.tenant().admin_token}"}
    calls = 0

    def counts() -> dict[str, int]:
        return asyncio.run_coroutine_threadsafe(_counts(stack), loop).result(timeout=60)

    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(generation_mode=mode,
                                         path_parameters={"tenant": "acme"})

        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case: Any) -> None:
            nonlocal calls
            before = counts()
            response = case.call(base_url=stack.bot_url, headers=auth, timeout=30)
            calls += 1
            assert response.status_code < 500, (case.method, case.formatted_path, case.query,
                                                case.body, response.text)
            if 400 <= response.status_code < 500:
                _check_refusal(case, response, before, counts())

        try:
            run()
        except Unsatisfiable:
            # Nothing of this route can be made invalid (no parameters, no body).
            assert mode is GenerationMode.NEGATIVE and not (operation.body or operation.query)
    return calls


async def test_every_admin_route_survives_fuzzing(aiohttp_server: Any, tmp_path: Path,
                                                  sqlite_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    try:
        await known(stack, customers=("wmFUZZ0001",), guides=("lina",))
        loop = asyncio.get_running_loop()
        positive = await asyncio.to_thread(_fuzz, stack, loop, GenerationMode.POSITIVE)
        negative = await asyncio.to_thread(_fuzz, stack, loop, GenerationMode.NEGATIVE)
        assert positive > 100 and negative > 100
    finally:
        await stack.http.close()
