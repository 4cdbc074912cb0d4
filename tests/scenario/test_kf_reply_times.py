"""接待时效 over HTTP with real encrypted kf callbacks through the sandbox: a customer asks for
a person, the session goes to their guide, the guide answers from the WeCom client (sync_msg
origin 5, the sandbox's simulate/kf_servicer_message); the first response is measured, the
servicer is reminded once per waiting stretch after `handoff_reply_minutes` and not before,
a transfer moves the wait to the new servicer and the session's end stops it, waiting ends
48 h after the customer's latest message, and one tenant never sees another's.

Every clock is set: the sandbox's (the messages' send_time) is put at a fixed instant before
each simulated message, and the reply-time service's clock is set before each look; nothing
depends on the time of day."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from guidebot import jobs
from guidebot.alerts.handoff_reply import KIND
from guidebot.app import RUNTIME, create_app
from guidebot.db.repo import outbox as outbox_repo
from tests.support.console import Console
from tests.support.kf import KFID, control, customer_writes, kf_rows, kf_state, session, use_router
from tests.support.stack import FAST_BACKOFF, Stack, start_stack

T0 = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai; after any real cursor
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = T0.astimezone(SHANGHAI).date()
BETA_KF = "wkBETAshop00000000000001"
BETA = f'\n[tenants.beta.kf]\nopen_kfids = ["{BETA_KF}"]\n'


def at(stack: Stack, minutes: float) -> datetime:
    """Put the sandbox clock at T0 + minutes (a fifth of a second in, so the whole second a
    message is stamped with is that one) and the reply-time service's clock there too."""
    when = T0 + timedelta(minutes=minutes)
    stack.sandbox.clock_offset = when.timestamp() + 0.2 - time.time()
    stack.runtime.services.reply_times.clock = lambda: when
    return when


async def _guide_customer(stack: Stack, guide: str, name: str, tenant: str = "acme") -> str:
    added = await stack.sandbox.simulate_add_contact(tenant, userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _servicer_writes(stack: Stack, customer: str, text: str = "您好，我来帮您看看",
                           **extra: Any) -> Any:
    result = await control(stack, "simulate/kf_servicer_message",
                           {"open_kfid": KFID, "external_userid": customer, "text": text,
                            **extra})
    await stack.runtime.drain()
    return result


async def _session_change(stack: Stack, customer: str, change_type: int,
                          new_servicer: str = "") -> Any:
    result = await control(stack, "simulate/kf_session_change",
                           {"open_kfid": KFID, "external_userid": customer,
                            "change_type": change_type, "new_servicer_userid": new_servicer})
    await stack.runtime.drain()
    return result


async def _remind(stack: Stack, minutes: float, tenant: str = "acme") -> int:
    at(stack, minutes)
    return await stack.runtime.services.handoff_reminders.run(tenant)


async def _job(stack: Stack, minutes: float) -> int:
    """The scheduled job's run (jobs.run_handoff_reminders): the app messages it added."""
    at(stack, minutes)
    before = len(_reminders(stack))
    await jobs.run_handoff_reminders(stack.runtime.services, "acme")
    return len(_reminders(stack)) - before


def _reminders(stack: Stack, guide: str | None = None, tenant: str = "acme") -> list[str]:
    return [m["content"]["content"] for m in stack.sandbox.state(tenant)["app_messages"]
            if m["msgtype"] == "text" and guide in (None, m["userid"])]


async def _summary(stack: Stack, tenant: str = "acme", day: date = DAY) -> Any:
    status, body = await stack.admin(f"/handoffs/summary?from={day}&to={day}", tenant=tenant)
    assert status == 200, body
    return body


def _guide(summary: Any, guide: str) -> Any:
    return next(g for g in summary["guides"] if g["guide"] == guide)


async def test_first_response_measured_and_reminded_once_per_wait(
        stack: Stack, aiohttp_server: Any) -> None:
    use_router(stack)
    customer = await _guide_customer(stack, "lina", "孙悦")
    at(stack, 0)
    await customer_writes(stack, customer, "我要转人工")
    assert session(await kf_state(stack), customer)["servicer_userid"] == "lina"
    [handed] = await kf_rows(stack, customer)
    # not before the threshold (10 minutes by default)
    assert await _remind(stack, 9) == 0 and _reminders(stack) == []
    status, body = await stack.admin("/handoffs?status=waiting")
    [waiting] = body["items"]
    assert status == 200 and waiting["waited_s"] == 9 * 60 and waiting["overdue"] is False
    assert (waiting["guide"], waiting["msgid"], waiting["customer_name"]) == (
        "lina", handed.msgid, "孙悦")
    # at the threshold: one app message to the servicer, with the way to the handoff page
    assert await _remind(stack, 10) == 1
    [notice] = _reminders(stack, "lina")
    assert "孙悦" in notice and "10 分钟" in notice
    public = stack.runtime.services.settings.server.public_url
    assert f'href="{public}/sidebar/acme/handoff/{handed.msgid}"' in notice
    # later looks (the job's included), and another process, send nothing more
    assert await _remind(stack, 11) == 0 and await _job(stack, 30) == 0
    second = create_app(stack.settings, start_jobs=False, backoff=FAST_BACKOFF)
    await aiohttp_server(second)
    second_times = second[RUNTIME].services.reply_times
    second_times.clock = stack.runtime.services.reply_times.clock
    assert await second[RUNTIME].services.handoff_reminders.run("acme") == 0
    assert len(_reminders(stack)) == 1
    async with stack.runtime.services.db.read() as s:
        rows = await outbox_repo.list_items(s, tenant="acme", kind=KIND)
    assert [r.key for r in rows] == [f"handoff_reply:lina:{handed.msgid}"]
    # the servicer answers from the WeCom client at 12 minutes: stored with who wrote
    at(stack, 12)
    await _servicer_writes(stack, customer)
    reply = (await kf_rows(stack, customer))[-1]
    assert (reply.origin, reply.servicer_userid, reply.status) == (5, "lina", "skipped")
    summary = await _summary(stack)
    assert summary["threshold_minutes"] == 10
    assert {k: v for k, v in _guide(summary, "lina").items()} == {
        "guide": "lina", "name": "lina", "handoffs": 1, "replied": 1,
        "median_first_response_s": 720, "average_first_response_s": 720,
        "replied_within": 0, "replied_within_share": 0.0, "waiting_now": 0,
        "overdue_now": 0}
    _, waiting_now = await stack.admin("/handoffs?status=waiting")
    assert waiting_now["items"] == []
    # the customer writes again: a new waiting stretch, reminded once after its 10 minutes
    at(stack, 20)
    await customer_writes(stack, customer, "还在吗？")
    again = (await kf_rows(stack, customer))[-1]
    assert await _job(stack, 29) == 0 and await _job(stack, 30) == 1
    assert await _remind(stack, 40) == 0
    assert len(_reminders(stack, "lina")) == 2
    assert "还在吗" not in _reminders(stack)[-1]  # the customer's words are not repeated
    _, listed = await stack.admin("/handoffs?status=waiting")
    [item] = listed["items"]
    assert item["waiting_since"] == again.send_time.isoformat() and item["overdue"] is True
    assert item["first_response_s"] == 720
    _, replied = await stack.admin(f"/handoffs?status=replied&from={DAY}&to={DAY}")
    assert [i["msgid"] for i in replied["items"]] == [handed.msgid]
    summary = await _summary(stack)
    assert (_guide(summary, "lina")["waiting_now"], _guide(summary, "lina")["overdue_now"]) \
        == (1, 1)
    # another day's range holds no handoff, but who waits now is still counted
    other = await _summary(stack, day=DAY - timedelta(days=1))
    assert _guide(other, "lina")["handoffs"] == 0 and _guide(other, "lina")["waiting_now"] == 1
    # the console's page: the same figures, and the customer waiting, in both languages
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/handoffs?from={DAY}&to={DAY}")
        assert status == 200 and 'data-guide="lina"' in html
        row = html.split('data-guide="lina"')[1].split("</tr>")[0]
        for col, value in (("handoffs", "1"), ("replied", "1"), ("median", "12 分 00 秒"),
                           ("within", "0.0%"), ("waiting_now", "1"), ("overdue_now", "1")):
            assert f'data-col="{col}">{value}<' in row, col
        waiting_row = html.split(f'data-customer="{customer}"')[1].split("</tr>")[0]
        assert 'data-overdue="1"' in html and "孙悦" in waiting_row
        assert 'data-col="waited">20 分 00 秒' in waiting_row and "已超时" in waiting_row
        assert 'title="首次回复时长（中位数）= ' in html  # the definition on hover
        status, english, _ = await console.get(f"/console/acme/handoffs?from={DAY}&to={DAY}"
                                               "&lang=en")
        assert status == 200 and "Median first response" in english and "Overdue" in english
        assert 'data-col="median">12m 00s<' in english
    finally:
        await console.close()


async def test_a_reply_in_time_sends_no_reminder(stack: Stack) -> None:
    use_router(stack)
    customer = await _guide_customer(stack, "lina", "孙悦")
    at(stack, 0)
    await customer_writes(stack, customer, "转人工")
    at(stack, 3)
    await _servicer_writes(stack, customer)
    assert await _remind(stack, 15) == 0 and _reminders(stack) == []
    lina = _guide(await _summary(stack), "lina")
    assert (lina["handoffs"], lina["replied"], lina["median_first_response_s"],
            lina["replied_within"], lina["replied_within_share"]) == (1, 1, 180, 1, 1.0)
    # the customer asks again while the session is with lina: the same handoff goes on
    at(stack, 5)
    await customer_writes(stack, customer, "转人工")
    at(stack, 6)
    await _servicer_writes(stack, customer)
    assert _guide(await _summary(stack), "lina")["handoffs"] == 1
    assert await _remind(stack, 30) == 0


async def test_a_transfer_moves_the_wait_and_the_end_stops_it(stack: Stack) -> None:
    use_router(stack)
    customer = await _guide_customer(stack, "lina", "孙悦")
    at(stack, 0)
    await customer_writes(stack, customer, "我要转人工")
    [handed] = await kf_rows(stack, customer)
    at(stack, 2)
    moved = await _session_change(stack, customer, 2, "wangfang")
    assert moved["event"]["old_servicer_userid"] == "lina"
    assert session(await kf_state(stack), customer)["servicer_userid"] == "wangfang"
    event = (await kf_rows(stack, customer))[-1]
    assert (event.event_type, event.servicer_userid) == ("session_status_change", "wangfang")
    # the customer has waited 10 minutes: the servicer who has the session now is told
    assert await _remind(stack, 10) == 1
    assert _reminders(stack, "lina") == [] and len(_reminders(stack, "wangfang")) == 1
    summary = await _summary(stack)
    lina, wang = _guide(summary, "lina"), _guide(summary, "wangfang")
    assert (lina["handoffs"], lina["replied"], lina["waiting_now"]) == (1, 0, 0)
    assert (wang["handoffs"], wang["waiting_now"], wang["overdue_now"]) == (1, 1, 1)
    _, listed = await stack.admin("/handoffs?status=all")
    assert sorted((i["guide"], i["via"], i["end"]) for i in listed["items"]) == [
        ("lina", "handoff", "transferred"), ("wangfang", "transfer", None)]
    # wangfang ends the session without answering: nobody waits, nobody is reminded
    at(stack, 12)
    await _session_change(stack, customer, 3)
    assert session(await kf_state(stack), customer)["service_state"] == 4
    _, waiting = await stack.admin("/handoffs?status=waiting")
    assert waiting["items"] == []
    assert await _remind(stack, 40) == 0 and len(_reminders(stack)) == 1
    wang = _guide(await _summary(stack), "wangfang")
    assert (wang["handoffs"], wang["replied"], wang["waiting_now"]) == (1, 0, 0)
    # the handoff page opens for the servicer the session was transferred to
    services = stack.runtime.services
    assert await services.kf.handoff.view("acme", "wangfang", handed.msgid) is not None
    assert await services.kf.handoff.view("acme", "zhouyi", handed.msgid) is None


async def test_a_session_taken_from_the_pool_is_followed_like_a_handoff(stack: Stack) -> None:
    """Nobody could take the handoff (the customer has no guide): the pool (state 2). The
    turn counts from the time the customer entered the pool, under the pool (guide "") and
    with nobody to remind; a servicer takes it in the WeCom client (session_status_change
    change_type 1): the same turn is theirs from then on, the customer's wait goes on from the
    handed message, their first response counts from entering the pool, the reminder
    applies; asking for a person again is not handed again."""
    use_router(stack)
    customer = "wmKFpoolcustomer01"
    at(stack, 0)
    await customer_writes(stack, customer, "转人工")
    [handed] = await kf_rows(stack, customer)
    assert (handed.status, handed.guide) == ("handoff", None)
    assert session(await kf_state(stack), customer)["service_state"] == 2
    at(stack, 2)
    _, waiting = await stack.admin("/handoffs?status=waiting")
    [pooled] = waiting["items"]
    assert (pooled["guide"], pooled["via"], pooled["msgid"], pooled["taken_at"]) == (
        "", "pool", handed.msgid, None)
    assert pooled["handed_at"] == T0.isoformat() and pooled["waited_s"] == 120
    pool_row = _guide(await _summary(stack), "")
    assert (pool_row["handoffs"], pool_row["replied"], pool_row["waiting_now"]) == (1, 0, 1)
    at(stack, 3)
    taken = await _session_change(stack, customer, 1, "wangfang")
    assert (taken["event"]["change_type"], taken["event"]["new_servicer_userid"]) == (
        1, "wangfang")
    state = session(await kf_state(stack), customer)
    assert (state["service_state"], state["servicer_userid"]) == (3, "wangfang")
    event = (await kf_rows(stack, customer))[-1]
    assert (event.status, event.route) == ("skipped", "")  # guidebot's handoff goes on
    status, body = await stack.admin("/handoffs?status=waiting")
    [item] = body["items"]
    assert status == 200 and (item["guide"], item["via"], item["msgid"]) == (
        "wangfang", "pool", handed.msgid)
    assert item["handed_at"] == T0.isoformat()
    assert item["taken_at"] == (T0 + timedelta(minutes=3)).isoformat()
    assert item["waiting_since"] == handed.send_time.isoformat()
    # the customer has waited 10 minutes since the handed message: wangfang is reminded
    assert await _remind(stack, 9) == 0 and await _remind(stack, 10) == 1
    [notice] = _reminders(stack, "wangfang")
    assert f"/sidebar/acme/handoff/{handed.msgid}" in notice
    assert await stack.runtime.services.kf.handoff.view("acme", "wangfang",
                                                        handed.msgid) is not None
    # the console shows where the turn came from
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/handoffs?from={DAY}&to={DAY}")
        row = html.split(f'data-customer="{customer}"')[1].split("</tr>")[0]
        assert status == 200 and "经待接入池" in row and 'data-pool="1"' not in html
    finally:
        await console.close()
    # asking for a person again while wangfang has it: not handed again
    at(stack, 12)
    await customer_writes(stack, customer, "转人工")
    assert [c["body"]["service_state"] for c in stack.calls("kf/service_state/trans")] == [2]
    again = (await kf_rows(stack, customer))[-1]
    assert again.status == "skipped" and again.reason.startswith("already with wangfang")
    # wangfang answers at 15 minutes: 15 minutes after the customer entered the pool
    at(stack, 15)
    await _servicer_writes(stack, customer)
    summary = await _summary(stack)
    assert [g["guide"] for g in summary["guides"]] == ["wangfang"]  # counted once
    wang = _guide(summary, "wangfang")
    assert (wang["handoffs"], wang["replied"], wang["median_first_response_s"],
            wang["waiting_now"]) == (1, 1, 900, 0)
    _, listed = await stack.admin("/handoffs?status=all")
    assert [(i["guide"], i["via"], i["end"], i["first_response_s"])
            for i in listed["items"]] == [("wangfang", "pool", None, 900)]


async def test_a_handoff_to_the_pool_counts_on_the_day_it_entered_the_pool(
        stack: Stack) -> None:
    """Handed to the pool one day, taken the next: the turn is the taker's and counts on the
    day the customer entered the pool, not again on the day of the take."""
    use_router(stack)
    customer = "wmKFpoolnextday1"
    at(stack, 0)
    await customer_writes(stack, customer, "转人工")
    [handed] = await kf_rows(stack, customer)
    at(stack, 24 * 60)
    await _session_change(stack, customer, 1, "wangfang")
    first = _guide(await _summary(stack), "wangfang")
    assert (first["handoffs"], first["waiting_now"]) == (1, 1)
    second = _guide(await _summary(stack, day=DAY + timedelta(days=1)), "wangfang")
    assert (second["handoffs"], second["waiting_now"]) == (0, 1)
    _, listed = await stack.admin(f"/handoffs?status=all&from={DAY}&to={DAY}")
    assert [(i["guide"], i["via"], i["msgid"]) for i in listed["items"]] == [
        ("wangfang", "pool", handed.msgid)]
    later = DAY + timedelta(days=1)
    _, listed = await stack.admin(f"/handoffs?status=all&from={later}&to={later}")
    assert listed["items"] == []


async def test_waiting_ends_with_the_sessions_48_hours(stack: Stack) -> None:
    use_router(stack)
    customer = await _guide_customer(stack, "lina", "孙悦")
    at(stack, 0)
    await customer_writes(stack, customer, "转人工")
    at(stack, 47 * 60)
    _, waiting = await stack.admin("/handoffs?status=waiting")
    assert [i["waited_s"] for i in waiting["items"]] == [47 * 3600]
    assert await _remind(stack, 48 * 60 + 1) == 0 and _reminders(stack) == []
    _, waiting = await stack.admin("/handoffs?status=waiting")
    assert waiting["items"] == []
    assert _guide(await _summary(stack), "lina")["waiting_now"] == 0


async def test_reminders_off_and_tenants_apart(aiohttp_server: Any, tmp_path: Path,
                                               db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=BETA + (
        "\n[tenants.acme.alerts]\nhandoff_reply_minutes = 0\n"))
    try:
        use_router(stack)
        acme = await _guide_customer(stack, "lina", "孙悦")
        beta = await _guide_customer(stack, "zhaolei", "钱多", tenant="beta")
        at(stack, 0)
        await customer_writes(stack, acme, "转人工")
        await control(stack, "simulate/kf_message", {"open_kfid": BETA_KF,
                                                     "external_userid": beta,
                                                     "text": "转人工"}, tenant="beta")
        await stack.runtime.drain()
        # acme turned the reminder off; beta's default (10 minutes) goes on
        assert await _remind(stack, 30) == 0
        assert await _remind(stack, 30, tenant="beta") == 1
        assert _reminders(stack) == [] and len(_reminders(stack, "zhaolei", "beta")) == 1
        acme_summary = await _summary(stack)
        assert acme_summary["threshold_minutes"] == 10  # the figures' default when off
        assert [g["guide"] for g in acme_summary["guides"]] == ["lina"]
        assert [g["guide"] for g in (await _summary(stack, "beta"))["guides"]] == ["zhaolei"]
        _, beta_waiting = await stack.admin("/handoffs?status=waiting", tenant="beta")
        assert [i["external_userid"] for i in beta_waiting["items"]] == [beta]
        status, _ = await stack.admin("/handoffs?status=waiting", tenant="beta",
                                      token="acme-admin-token")
        assert status == 403
        status, body = await stack.admin("/handoffs?status=late")
        assert status == 400 and body["field"] == "status"
        status, body = await stack.admin("/handoffs/summary?from=2030-03-05&to=2030-03-04")
        assert status == 400
    finally:
        await stack.http.close()


@pytest.mark.parametrize(("route", "body", "status"), [
    ("kf_servicer_message", {"text": "hi"}, 409),  # no session with a servicer
    ("kf_servicer_message", {"text": "hi", "servicer_userid": "zhouyi"}, 409),  # not theirs
    ("kf_session_change", {"change_type": 3}, 409),  # not in state 3
    ("kf_session_change", {"change_type": 4}, 400),
    ("kf_session_change", {"change_type": 2, "new_servicer_userid": "lina"}, 409),  # the same
    ("kf_session_change", {"change_type": 1, "new_servicer_userid": "zhouyi"}, 409),  # not 2
])
async def test_the_sandbox_refuses_what_the_client_would_not_do(
        stack: Stack, route: str, body: dict[str, Any], status: int) -> None:
    use_router(stack)
    customer = await _guide_customer(stack, "lina", "孙悦")
    if body.get("servicer_userid") or body.get("new_servicer_userid"):
        await customer_writes(stack, customer, "转人工")  # the session is lina's (state 3)
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/simulate/{route}",
                               json={"open_kfid": KFID, "external_userid": customer,
                                     **body}) as resp:
        assert resp.status == status, await resp.text()
    assert [r.origin for r in await kf_rows(stack, customer)] in ([], [3])
