"""微信客服 with the shipped reply router and the real openai client at a local server: a
grounded answer goes out; an invented price, a leaked system prompt, a model that is down or
slower than `timeout_s` never reach the customer — the catalog answers, or a person takes over."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.chat import start_llm_stack
from tests.support.kf import customer_writes, kf_rows, kf_state, sent_texts, session

GROUNDED = "这款是显白的正红色，黄皮也很适合，日常通勤很好搭配。"
INVENTED = "这款今天只要199元，黄皮也很适合。"


def _sent_bodies(stack: Any) -> str:
    """What the customers saw (our msgids, hashes, are left out: one may contain "199")."""
    return json.dumps([{k: v for k, v in c["body"].items() if k != "msgid"}
                       for c in stack.calls("kf/send_msg")], ensure_ascii=False)


async def test_only_grounded_model_answers_reach_the_customer(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack, fake = await start_llm_stack(aiohttp_server, tmp_path, db_url)
    try:
        fake.script("丝绒哑光口红适合黄皮吗", answer=GROUNDED)
        fake.script("丝绒哑光口红显白吗", answer=INVENTED)
        fake.script("你们品牌是哪个国家的", echo_system=True)
        fake.script("修护精华液适合油皮吗", status=500)

        await customer_writes(stack, "wmKFllm00001", "丝绒哑光口红适合黄皮吗")
        assert sent_texts(stack, "wmKFllm00001") == [GROUNDED]
        [row] = await kf_rows(stack, "wmKFllm00001")
        assert (row.status, row.route, row.reason) == ("replied", "llm", "llm:grounded")

        # an invented price: the catalog's own entry goes out instead
        await customer_writes(stack, "wmKFllm00002", "丝绒哑光口红显白吗")
        [text] = sent_texts(stack, "wmKFllm00002")
        assert "¥299" in text and "199" not in text.replace("¥299", "")
        [row] = await kf_rows(stack, "wmKFllm00002")
        assert row.route == "catalog" and "after llm_" in row.reason, row.reason

        # the system prompt echoed back: nothing is sent, a person takes over (the pool)
        await customer_writes(stack, "wmKFllm00003", "你们品牌是哪个国家的")
        assert sent_texts(stack, "wmKFllm00003") == []
        [row] = await kf_rows(stack, "wmKFllm00003")
        assert row.status == "handoff" and row.reason.startswith("handoff:llm_"), row.reason
        assert session(await kf_state(stack), "wmKFllm00003")["service_state"] == 2

        # the model answers 500: the catalog answers
        await customer_writes(stack, "wmKFllm00004", "修护精华液适合油皮吗")
        [text] = sent_texts(stack, "wmKFllm00004")
        assert "¥599" in text
        [row] = await kf_rows(stack, "wmKFllm00004")
        assert "after llm_unavailable" in row.reason, row.reason

        assert len(fake.requests) == 4  # each message went to the model once
        sent = _sent_bodies(stack)
        assert stack.runtime.services.chat.canary not in sent and "199" not in sent
    finally:
        await stack.http.close()


async def test_a_model_slower_than_its_timeout_is_not_waited_for(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack, fake = await start_llm_stack(aiohttp_server, tmp_path, db_url, timeout_s=1.0)
    try:
        fake.script("羊绒围巾好打理吗", answer="羊绒围巾很好打理，手洗即可。", delay_s=4.0)
        await customer_writes(stack, "wmKFslow0001", "羊绒围巾好打理吗")
        [text] = sent_texts(stack, "wmKFslow0001")
        assert "羊绒围巾 燕麦色" in text and "手洗" not in text
        [row] = await kf_rows(stack, "wmKFslow0001")
        assert row.route == "catalog" and "after llm_unavailable" in row.reason, row.reason
    finally:
        await stack.http.close()


async def test_the_model_calls_and_the_replies_are_metered(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """Usage counts each answered model call's tokens as the endpoint reported them, also an
    answer guidebot then refused, and each 微信客服 message sent; a call that failed has no
    tokens to count."""
    stack, fake = await start_llm_stack(aiohttp_server, tmp_path, db_url)
    try:
        fake.script("丝绒哑光口红适合黄皮吗", answer=GROUNDED)
        fake.script("丝绒哑光口红显白吗", answer=INVENTED)  # refused: the catalog answers
        fake.script("修护精华液适合油皮吗", status=500)  # no usage: nothing to count
        for n, text in enumerate(("丝绒哑光口红适合黄皮吗", "丝绒哑光口红显白吗",
                                  "修护精华液适合油皮吗"), start=1):
            await customer_writes(stack, f"wmKFmeter{n:04d}", text)
        failed = "修护精华液适合油皮吗"
        answered = [r for r in fake.requests if r["messages"][-1]["content"] != failed]
        assert len(answered) == 2 and len(fake.requests) == 3

        def length(request: dict[str, Any], role: str) -> int:
            return sum(len(m["content"]) for m in request["messages"] if m["role"] == role)

        # the local server's usage: prompt = system + user text, completion = the answer
        prompt = sum(length(r, "system") + length(r, "user") for r in answered)
        completion = len(GROUNDED) + len(INVENTED)
        period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        status, usage = await stack.admin(f"/usage?period={period}")
        assert status == 200, usage
        assert (usage["llm_calls"], usage["llm_prompt_tokens"],
                usage["llm_completion_tokens"]) == (2, prompt, completion)
        assert usage["llm_tokens"] == prompt + completion
        assert usage["messages"]["kf_reply"] == len(stack.calls("kf/send_msg")) >= 3
        status, beta = await stack.admin(f"/usage?period={period}", tenant="beta")
        assert (beta["llm_calls"], beta["messages"]["kf_reply"]) == (0, 0)
    finally:
        await stack.http.close()
