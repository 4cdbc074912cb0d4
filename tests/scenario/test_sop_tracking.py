"""Tracking over HTTP: confirmations of 群发 tasks larger than one result page, and moment
job results polled until WeCom reports them done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from guidebot.db.models_sop import SopTask
from guidebot.db.repo import sop_plan
from guidebot.sop.moment_results import outcome
from tests.support.stack import Stack

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near


async def _control(stack: Stack, path: str, body: dict[str, Any]) -> Any:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/{path}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_confirmation_counts_every_page_of_the_send_result(flash_stack: Stack) -> None:
    stack, count = flash_stack, 1_500  # more than one page (limit ≤ 1000, FACTS §3.5)
    customers = [f"wmPAGE{i:05d}" for i in range(count)]
    await _control(stack, "seed", {"follows": [{"userid": "lina", "external_userid": c}
                                                for c in customers]})
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0 + timedelta(minutes=2)
    await sop.ready("acme")
    async with stack.runtime.services.db.write() as s:
        await sop_plan.insert_enrollments(s, [{
            "tenant": "acme", "sop_id": "flash", "external_userid": c, "guide": "lina",
            "store_id": None, "trigger_at": T0, "status": "active", "reason": "",
            "version": 1, "next_step": 0, "next_at": T0 + timedelta(minutes=1), "last_at": None,
            "created_at": T0, "updated_at": T0} for c in customers])
    await sop.tick("acme")
    [send] = stack.calls("externalcontact/add_msg_template")
    assert len(send["body"]["external_userid"]) == count
    _, body = await stack.admin("/tasks?guide=lina&status=sent")
    [task] = [t for t in body["tasks"] if t["kind"] == "guide_task"]
    await _control(stack, "confirm_groupmsg", {"msgid": task["msgid"], "userid": "lina"})
    sop.clock = lambda: T0 + timedelta(hours=1)
    assert await sop.track("acme") >= 1
    _, body = await stack.admin("/tasks?status=confirmed")
    assert [(t["id"], t["confirmed"]) for t in body["tasks"]] == [(task["id"], count)]
    results = stack.calls("externalcontact/get_groupmsg_send_result")
    assert [c["body"].get("cursor", "") for c in results] == ["", "1000"]


async def test_moment_job_results_are_polled_until_done_and_shown(flash_stack: Stack) -> None:
    stack = flash_stack
    status, code = await stack.admin("/channels", method="POST",
                                     json={"guide": "lina", "store": "S01"})
    assert status == 201, code
    await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"], name="周婷")
    await stack.runtime.drain()
    await _control(stack, "moment_job_polls", {"polls": 2})
    sop = stack.runtime.services.sop
    # weekly_new_arrivals: cron "0 10 * * 5" — first seen Thursday, fires Friday 10:00
    sop.clock = lambda: datetime(2026, 12, 10, 3, 0, tzinfo=UTC)
    await sop.singletons("acme")
    fired = datetime(2026, 12, 11, 2, 5, tzinfo=UTC)
    sop.clock = lambda: fired
    await sop.singletons("acme")
    await sop.tick("acme")
    [job] = stack.calls("externalcontact/add_moment_task")
    assert job["errcode"] == 0

    seen = []
    for minutes in (31, 37, 43, 49):  # a look is due 30 min after sending, then every 5 min
        sop.clock = lambda m=minutes: fired + timedelta(minutes=m)
        await sop.track("acme")
        _, body = await stack.admin("/tasks?guide=lina")
        [task] = [t for t in body["tasks"] if t["kind"] == "moment"]
        seen.append(task["detail"].get("moment", {}).get("job_status"))
    assert seen == [1, 2, 3, 3]
    assert len(stack.calls("externalcontact/get_moment_task_result")) == 3  # none once done
    assert task["status"] == "sent" and task["note"] is None
    moment = task["detail"]["moment"]
    assert moment["moment_id"].startswith("mom") and moment["errcode"] == 0
    assert moment["invalid_senders"] == [] and moment["invalid_tags"] == []


def test_a_failed_or_refused_moment_job_is_recorded_as_failed() -> None:
    task = SopTask(tenant="acme", key="k", kind="moment", source="drop:x", guide="lina",
                   message="m")
    failed = outcome(task, {"status": 3, "result": {"errcode": 41065}})
    assert failed[:2] == ("failed", "moment job failed: errcode 41065")
    refused = outcome(task, {"status": 3, "result": {
        "errcode": 0, "moment_id": "mom1",
        "invalid_sender_list": {"user_list": ["lina"], "department_list": []},
        "invalid_external_contact_list": {"tag_list": ["et1"]}}})
    assert refused == ("failed", "the guide is not a valid sender (invalid_sender_list)", {
        "job_status": 3, "errcode": 0, "moment_id": "mom1", "invalid_senders": ["lina"],
        "invalid_tags": ["et1"]})
    assert outcome(task, {"status": 3, "result": {"errcode": 0, "moment_id": "mom2"}})[:2] \
        == ("sent", "")
