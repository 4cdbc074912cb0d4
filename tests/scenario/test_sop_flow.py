"""SOPs end to end over HTTP: the SOP welcome, steps firing as guide tasks on a moved clock,
guides confirming in the sandbox, exits, and the admin API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from guidebot.events import OrderPaid
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _store_code(stack: Stack, guide: str = "lina", **extra: object) -> dict:
    status, body = await stack.admin("/channels", method="POST",
                                     json={"guide": guide, "store": "S01", "tags": ["门店扫码"],
                                           **extra})
    assert status == 201, body
    return body


def _local_day(trigger: datetime, day: int, hour: int, minute: int = 0) -> datetime:
    local = trigger.astimezone(SHANGHAI).date() + timedelta(days=day)
    return datetime(local.year, local.month, local.day, hour, minute, tzinfo=SHANGHAI)


async def _add(stack: Stack, code: dict, name: str, create_time: int | None = None) -> dict:
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                     name=name, create_time=create_time)
    await stack.runtime.drain()
    return added


async def test_sop_welcome_replaces_the_default_and_steps_become_guide_tasks(
        stack: Stack) -> None:
    code = await _store_code(stack)
    added = await _add(stack, code, "张晓雨")
    welcomes = stack.calls("externalcontact/send_welcome_msg")
    assert len(welcomes) == 1  # one WelcomeCode, one send
    assert welcomes[0]["body"]["welcome_code"] == added["welcome_code"]
    assert "最受欢迎" in welcomes[0]["body"]["text"]["content"]  # the SOP's, not the default

    sop = stack.runtime.services.sop
    trigger = datetime.now(UTC)
    sop.clock = lambda: _local_day(trigger, 1, 9, 59).astimezone(UTC)
    await sop.tick("acme")
    assert stack.calls("externalcontact/add_msg_template") == []  # not due before 10:00
    sop.clock = lambda: _local_day(trigger, 1, 10, 1).astimezone(UTC)
    await sop.tick("acme")
    sends = stack.calls("externalcontact/add_msg_template")
    assert len(sends) == 1
    assert sends[0]["body"]["sender"] == "lina"
    assert sends[0]["body"]["external_userid"] == [added["external_userid"]]
    assert "热销" in sends[0]["body"]["attachments"][0]["link"]["title"]
    cards = stack.calls("message/send")
    assert len(cards) == 1 and cards[0]["body"]["touser"] == "lina"
    assert "待您确认" in cards[0]["body"]["textcard"]["description"]
    await sop.tick("acme")
    assert len(stack.calls("externalcontact/add_msg_template")) == 1  # once, not per tick

    status, body = await stack.admin("/tasks?guide=lina")
    assert status == 200
    task = next(t for t in body["tasks"] if t["kind"] == "guide_task")
    assert task["status"] == "sent" and task["recipients"] == 1
    assert task["source"] == "sop:new_customer_nurture" and task["step"] == 1
    assert task["delivery"]["status"] == "done"

    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/confirm_groupmsg",
                               json={"msgid": task["msgid"], "userid": "lina"}) as resp:
        assert resp.status == 200
    sop.clock = lambda: _local_day(trigger, 1, 11, 0).astimezone(UTC)
    assert await sop.track("acme") == 1
    _, body = await stack.admin("/tasks?status=confirmed")
    assert [t["id"] for t in body["tasks"]] == [task["id"]]
    assert body["tasks"][0]["confirmed"] == 1


async def test_a_guides_customers_added_at_different_times_share_one_task_per_step(
        stack: Stack) -> None:
    code = await _store_code(stack)
    start = int(datetime.now(UTC).timestamp()) - 30
    added = [await _add(stack, code, name, create_time=start + 7 * n)  # distinct triggers
             for n, name in enumerate(("张晓雨", "李思", "王芳"))]
    assert len({a["external_userid"] for a in added}) == 3
    sop = stack.runtime.services.sop
    trigger = datetime.now(UTC)
    sop.clock = lambda: _local_day(trigger, 1, 10, 1).astimezone(UTC)
    await sop.tick("acme")
    sends = stack.calls("externalcontact/add_msg_template")
    assert len(sends) == 1  # one task for the guide, not one per trigger time
    assert sorted(sends[0]["body"]["external_userid"]) == sorted(
        a["external_userid"] for a in added)
    _, body = await stack.admin("/tasks?guide=lina")
    [task] = [t for t in body["tasks"] if t["kind"] == "guide_task"]
    assert task["recipients"] == 3


async def test_unconfirmed_tasks_are_reminded_at_most_three_times_a_day(stack: Stack) -> None:
    code = await _store_code(stack)
    await _add(stack, code, "孙悦")
    sop = stack.runtime.services.sop
    trigger = datetime.now(UTC)
    start = _local_day(trigger, 1, 10, 1).astimezone(UTC)
    sop.clock = lambda: start
    await sop.tick("acme")
    for hours in range(1, 12):
        sop.clock = lambda h=hours: start + timedelta(hours=h)
        await sop.track("acme")
    reminds = stack.calls("externalcontact/remind_groupmsg_send")
    assert len(reminds) == 3
    assert all(c["errcode"] == 0 for c in reminds)


async def test_order_paid_exit_cancels_pending_steps(stack: Stack) -> None:
    code = await _store_code(stack)
    added = await _add(stack, code, "周婷")
    customer = added["external_userid"]
    sop = stack.runtime.services.sop
    trigger = datetime.now(UTC)
    sop.clock = lambda: _local_day(trigger, 1, 10, 1).astimezone(UTC)
    await sop.plan("acme")
    await sop.dispatcher.batch("acme")  # step 1 is queued in a task, not sent yet
    await stack.runtime.services.raise_events([OrderPaid(
        tenant="acme", created_at=datetime.now(UTC), order_no="O1", external_userid=customer,
        guide="lina", amount_fen=19900)])
    await stack.runtime.drain()
    await sop.dispatcher.run("acme")
    sop.clock = lambda: _local_day(trigger, 8, 12, 0).astimezone(UTC)
    await sop.tick("acme")
    assert stack.calls("externalcontact/add_msg_template") == []
    _, body = await stack.admin("/tasks")
    nurture = [t for t in body["tasks"] if t["source"] == "sop:new_customer_nurture"]
    assert [t["status"] for t in nurture] == ["cancelled"]
    # the order enrolls the customer in 复购关怀 (trigger order_paid): its reminder goes out
    assert any(t["source"] == "sop:repurchase_care" for t in body["tasks"])
    _, sops = await stack.admin("/sops")
    counts = {s["id"]: s["enrollments"] for s in sops["sops"]}
    assert counts["new_customer_nurture"] == {"exited": 1}
    # another order of the same customer and guide enrolls nobody again (the engine skips a
    # pair it read as enrolled); one credited to another guide enrolls that guide's pair
    before = sum(counts["repurchase_care"].values())
    for n, guide in ((2, "lina"), (3, "zhaolei")):
        await stack.runtime.services.raise_events([OrderPaid(
            tenant="acme", created_at=datetime.now(UTC), order_no=f"O{n}",
            external_userid=customer, guide=guide, amount_fen=100)])
        await stack.runtime.drain()
        _, sops = await stack.admin("/sops")
        counts = {s["id"]: s["enrollments"] for s in sops["sops"]}
        assert sum(counts["repurchase_care"].values()) == before + (n == 3)
    assert counts["new_customer_nurture"] == {"exited": 1}


async def test_sops_preview_and_manual_enrollment_api(stack: Stack) -> None:
    status, body = await stack.admin("/sops")
    assert status == 200
    assert {"new_customer_nurture", "repurchase_care", "dormant_winback"} <= {
        s["id"] for s in body["sops"]}
    status, body = await stack.admin(
        "/sops/new_customer_nurture/preview?added_at=2026-11-20T22:30:00%2B08:00")
    assert status == 200, body
    assert body["steps"] == [
        {"index": 0, "at": "2026-11-20T22:30:00+08:00", "channel": "welcome",
         "message": "sop_new_welcome"},
        {"index": 1, "at": "2026-11-21T10:00:00+08:00", "channel": "guide_task",
         "message": "sop_new_bestsellers"},
        {"index": 2, "at": "2026-11-23T10:00:00+08:00", "channel": "guide_task",
         "message": "sop_new_coupon"},
        {"index": 3, "at": "2026-11-27T19:00:00+08:00", "channel": "reminder",
         "message": "sop_new_followup"}]
    status, body = await stack.admin(
        "/sops/repurchase_care/preview?added_at=2026-11-20T20:00:00+08:00")  # '+' as space
    assert status == 200
    assert body["steps"][0]["at"] == "2026-11-21T09:00:00+08:00"  # +2h = 22:00: quiet hours
    assert body["steps"][0]["note"] == "moved out of quiet hours"
    assert (await stack.admin("/sops/nope/preview?added_at=2026-11-20T20:00:00"))[0] == 404
    assert (await stack.admin("/sops/repurchase_care/preview"))[0] == 400

    enroll = {"external_userid": "wmMANUAL0001", "guide": "zhaolei"}
    await known(stack, customers=("wmMANUAL0001",), guides=("zhaolei",))
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST", json=enroll)
    assert status == 201 and body["created"] is True
    status, again = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                      json=enroll)
    assert status == 200 and again == {**body, "created": False}
    assert (await stack.admin("/sops/nope/enroll", method="POST", json=enroll))[0] == 404
    assert (await stack.admin("/sops/new_customer_nurture/enroll", method="POST",
                              json=enroll))[0] == 400  # starts with a welcome: needs an add
    assert (await stack.admin("/sops/repurchase_care/enroll", method="POST",
                              json={"guide": "x"}))[0] == 400
    assert (await stack.admin("/sops", token="wrong"))[0] == 403


async def test_failed_task_is_dead_lettered_with_its_error_in_the_api(stack: Stack) -> None:
    """A task whose call WeCom refuses (40058, not retryable) dies at once: the API and the
    console show it dead with its error and no next try; the console's retry makes it due now
    and the outbox's retry sends it."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "message/send", "errcode": 40058, "times": 1}) as resp:
        assert resp.status == 200
    await known(stack, customers=("wmDEAD0001",), guides=("chenjing",))
    status, _ = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                  json={"external_userid": "wmDEAD0001", "guide": "chenjing"})
    assert status == 201
    sop = stack.runtime.services.sop
    later = datetime.now(UTC) + timedelta(days=1)
    sop.clock = lambda: later.replace(hour=4)  # 12:00 in Shanghai: outside quiet hours
    await sop.tick("acme")
    status, body = await stack.admin("/tasks?status=dead")
    assert status == 200 and len(body["tasks"]) == 1
    delivery = body["tasks"][0]["delivery"]
    assert delivery["status"] == "dead" and "40058" in delivery["last_error"]
    assert delivery["next_try_at"] is None  # it will not be tried again by itself

    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        _, html, _ = await console.get("/console/acme/outbox")
        dead = re.search(r'<table id="dead">.*?</table>', html, re.S)
        assert dead and "40058" in dead.group(0)
        assert '<table id="pending">' not in html  # no row waits for a try
        [retry] = re.findall(r'action="(/console/acme/outbox/\d+/retry)"', dead.group(0))
        before = datetime.now(UTC).replace(microsecond=0)
        status, _, _ = await console.post(retry, {"_csrf": csrf_in(html)})
        assert status == 303
        _, body = await stack.admin("/tasks?status=failed")
        delivery = body["tasks"][0]["delivery"]
        assert delivery["attempts"] == 0
        assert datetime.fromisoformat(delivery["next_try_at"]) >= before
        _, html, _ = await console.get("/console/acme/outbox")
        pending = re.search(r'<table id="pending">.*?</table>', html, re.S)
        assert pending and "<td>失败待重试</td>" in pending.group(0)
        assert '<table id="dead">' not in html
    finally:
        await console.close()
    services = stack.runtime.services
    assert await services.outbox.retry_due(services.calls) == 1
    _, body = await stack.admin("/tasks")
    [task] = [t for t in body["tasks"] if t["delivery"] is not None]
    assert task["delivery"]["status"] == "done" and task["delivery"]["next_try_at"] is None
    assert [c["errcode"] for c in stack.calls("message/send")] == [40058, 0]


async def test_app_messages_to_one_guide_stay_within_30_a_minute(stack: Stack) -> None:
    from guidebot.db.repo import sop_tasks

    services = stack.runtime.services
    now = datetime.now(UTC)
    async with services.db.write() as s:  # 35 waiting notifications for one guide
        for i in range(35):
            await sop_tasks.insert_task(s, tenant="acme", key=f"notify:test{i}", kind="notify",
                                        source="sop:new_customer_nurture", guide="lina",
                                        message="sop_notify_guide", recipients=1,
                                        status="queued", now=now)
    sop = services.sop
    sop.clock = lambda: now
    await sop.dispatcher.run("acme")
    await sop.dispatcher.run("acme")
    assert len(stack.calls("message/send")) == 30
    assert all(not m["dropped"] for m in stack.sandbox.state("acme")["app_messages"])
    sop.clock = lambda: now + timedelta(seconds=61)
    stack.sandbox.advance_clock(61)
    await sop.dispatcher.run("acme")
    assert len(stack.calls("message/send")) == 35
    assert all(not m["dropped"] for m in stack.sandbox.state("acme")["app_messages"])
