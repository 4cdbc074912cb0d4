"""停止群发 over HTTP: HQ stops one firing of a drop from the admin API or the console. Tasks
not sent yet are never sent; 群发 tasks WeCom holds are cancelled there (cancel_groupmsg_send)
unless their guide sent them already; stopped customers' quota is free again; the guide's
task page says HQ stopped it; no reminder follows; a refused cancel is retried; a stop racing
a 群发 call that crashed looks for the template WeCom may hold and cancels it there."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from guidebot import outbox
from guidebot.db.models import OutboxItem
from guidebot.sop import guide_links
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, stack_with

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near
GUIDES = ("lina", "wang", "zhou")


@pytest.fixture
async def stop_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    stack = await stack_with(aiohttp_server, tmp_path, db_url,
                             {"drops/stop_drop.toml": DATA / "stop_drop.toml"})
    stack.runtime.services.sop.clock = lambda: T0
    yield stack
    await stack.http.close()


async def _customers(stack: Stack) -> dict[str, str]:
    """One customer per guide."""
    found = {}
    for guide in GUIDES:
        added = await stack.sandbox.simulate_add_contact("acme", userid=guide,
                                                         name=f"客户{guide}")
        found[guide] = str(added["external_userid"])
    await stack.runtime.drain()
    return found


async def _control(stack: Stack, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/{path}", json=body) as resp:
        return resp.status, await resp.json()


def _sent_to(stack: Stack) -> list[str]:
    return sorted(c for call in stack.calls("externalcontact/add_msg_template")
                  if call["errcode"] == 0 for c in call["body"]["external_userid"])


async def _msgids(stack: Stack) -> dict[str, str]:
    """Each guide's 群发 msgid, from the admin API's tasks."""
    _, tasks = await stack.admin("/tasks")
    return {t["guide"]: t["msgid"] for t in tasks["tasks"]
            if t["kind"] == "guide_task" and t["msgid"]}


async def _firing(stack: Stack, firing: str) -> dict[str, Any]:
    status, sends = await stack.admin("/drops/stop_drop/sends")
    assert status == 200, sends
    [row] = [f for f in sends["firings"] if f["firing"] == firing]
    return row


async def test_a_stop_before_sending_sends_nothing_and_frees_the_quota(
        stop_stack: Stack) -> None:
    stack = stop_stack
    customers = await _customers(stack)
    status, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    assert status == 200 and fired["tasks"] == 3, fired
    status, stopped = await stack.admin("/drops/stop_drop/stop", method="POST",
                                        json={"firing": fired["firing"]})
    assert status == 200, stopped
    assert (stopped["not_sent"], stopped["cancelled_in_wecom"], stopped["already_sent"],
            stopped["pending"]) == (3, 0, 0, 0)
    await stack.runtime.services.sop.tick("acme")
    assert _sent_to(stack) == []  # nothing reached WeCom
    row = await _firing(stack, fired["firing"])
    assert (row["tasks"], row["cancelled"], row["stopped"], row["can_stop"]) == (3, 3, True,
                                                                               False)
    # stopped customers never got it: the day's quota (1) lets a new firing reach them all
    stack.runtime.services.sop.clock = lambda: T0 + timedelta(minutes=5)
    status, again = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    assert status == 200 and again["tasks"] == 3, again
    await stack.runtime.services.sop.tick("acme")
    assert _sent_to(stack) == sorted(customers.values())


async def test_a_stop_cancels_in_wecom_what_guides_have_not_sent(stop_stack: Stack) -> None:
    stack = stop_stack
    customers = await _customers(stack)
    sop = stack.runtime.services.sop
    _, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    await sop.tick("acme")
    msgids = await _msgids(stack)
    assert sorted(msgids) == sorted(GUIDES)
    status, _ = await _control(stack, "confirm_groupmsg", {"msgid": msgids["lina"],
                                                           "userid": "lina"})
    assert status == 200  # lina sent hers before HQ stopped it
    row = await _firing(stack, fired["firing"])
    assert (row["sent"], row["can_stop"]) == (3, True)

    status, stopped = await stack.admin("/drops/stop_drop/stop", method="POST",
                                        json={"firing": fired["firing"]})
    assert status == 200, stopped
    assert (stopped["not_sent"], stopped["cancelled_in_wecom"], stopped["already_sent"],
            stopped["pending"]) == (0, 2, 1, 0)
    cancels = sorted(c["body"]["msgid"]
                     for c in stack.calls("externalcontact/cancel_groupmsg_send"))
    assert cancels == sorted([msgids["wang"], msgids["zhou"]])
    status, refused = await _control(stack, "confirm_groupmsg", {"msgid": msgids["wang"],
                                                                 "userid": "wang"})
    assert status == 409, refused  # WeCom no longer lets wang send it
    row = await _firing(stack, fired["firing"])
    assert (row["confirmed"], row["cancelled"], row["reached"], row["stopped"],
            row["can_stop"]) == (1, 2, 1, True, False)

    # a second stop changes nothing; no reminder reaches the stopped guides later
    _, again = await stack.admin("/drops/stop_drop/stop", method="POST",
                                 json={"firing": fired["firing"]})
    assert (again["not_sent"], again["cancelled_in_wecom"], again["pending"]) == (0, 0, 0)
    assert len(stack.calls("externalcontact/cancel_groupmsg_send")) == 2
    sop.clock = lambda: T0 + timedelta(hours=3)
    await sop.track("acme")
    assert stack.calls("externalcontact/remind_groupmsg_send") == []
    # lina's customer got it; wang's and zhou's may be sent to again today
    sop.clock = lambda: T0 + timedelta(hours=4)
    _, more = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    assert more["tasks"] == 2, more
    await sop.tick("acme")
    latest = stack.calls("externalcontact/add_msg_template")[-2:]
    assert sorted(c for call in latest for c in call["body"]["external_userid"]) == sorted(
        [customers["wang"], customers["zhou"]])

    # the guide's task page says HQ stopped it
    _, tasks = await stack.admin("/tasks?guide=wang")
    [task] = [t for t in tasks["tasks"] if t["kind"] == "guide_task"
              and t["status"] == "cancelled"]
    url = guide_links.task_url(stack.bot_url, stack.tenant(), task["id"])
    async with stack.http.get(url) as resp:
        assert resp.status == 200 and "总部已停止这条群发" in await resp.text()
    _, lina = await stack.admin("/tasks?guide=lina")
    [sent] = [t for t in lina["tasks"] if t["kind"] == "guide_task"
              and t["status"] == "confirmed"]
    async with stack.http.get(guide_links.task_url(stack.bot_url, stack.tenant(),
                                                   sent["id"])) as resp:
        assert "总部已停止" not in await resp.text()  # what lina sent stays hers


async def test_a_refused_cancel_is_retried_by_the_outbox(
        stop_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = stop_stack
    await _customers(stack)
    sop = stack.runtime.services.sop
    _, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    await sop.tick("acme")
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/cancel_groupmsg_send",
            "errcode": -1, "times": 3}) as resp:  # past the client's own tries
        assert resp.status == 200
    _, stopped = await stack.admin("/drops/stop_drop/stop", method="POST",
                                   json={"firing": fired["firing"]})
    assert (stopped["cancelled_in_wecom"], stopped["pending"]) == (2, 1), stopped
    row = await _firing(stack, fired["firing"])
    assert (row["cancelled"], row["sent"], row["can_stop"]) == (2, 1, False)
    services = stack.runtime.services
    later = datetime.now(UTC) + timedelta(minutes=10)  # past the outbox's backoff
    monkeypatch.setattr(outbox, "utcnow", lambda: later)
    assert await services.outbox.retry_due(services.calls) == 1
    row = await _firing(stack, fired["firing"])
    assert (row["cancelled"], row["sent"]) == (3, 0)
    assert len([c for c in stack.calls("externalcontact/cancel_groupmsg_send")
                if c["errcode"] == 0]) == 3


class Died(Exception):
    pass


async def _crashed_after_the_call(stack: Stack) -> tuple[str, str]:
    """lina's 群发 of a firing reaches WeCom, then the process dies before recording it: the
    task stays "sending", its outbox row waits for a retry. (firing, the msgid WeCom holds)"""
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="客户lina")
    await stack.runtime.drain()
    sop = stack.runtime.services.sop
    _, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    assert fired["tasks"] == 1, fired
    executors = sop._executors
    real = executors._sent

    def die(*args: Any, **kwargs: Any) -> None:
        raise Died  # WeCom created the template; the process dies before recording it

    executors._sent = die  # type: ignore[method-assign]
    with pytest.raises(Died):
        await sop.tick("acme")
    executors._sent = real  # type: ignore[method-assign]
    [msgid] = list(stack.sandbox.tenant("acme").templates)
    [call] = stack.calls("externalcontact/add_msg_template")
    assert call["body"]["external_userid"] == [added["external_userid"]]
    return str(fired["firing"]), msgid


async def _retry_stale(stack: Stack) -> None:
    """Later, the crashed call's outbox row is stale: the outbox retries it."""
    services = stack.runtime.services
    async with services.db.write() as s:
        await s.execute(update(OutboxItem).values(updated_at=T0 - timedelta(hours=1)))
    assert await services.outbox.retry_due(services.calls) >= 1


async def test_a_stop_racing_a_crashed_call_cancels_the_template_wecom_holds(
        stop_stack: Stack) -> None:
    stack = stop_stack
    firing, msgid = await _crashed_after_the_call(stack)
    status, stopped = await stack.admin("/drops/stop_drop/stop", method="POST",
                                        json={"firing": firing})
    assert status == 200 and stopped["pending"] == 1, stopped
    await _retry_stale(stack)
    assert len(stack.calls("externalcontact/add_msg_template")) == 1  # not sent again
    assert [c["body"]["msgid"] for c in stack.calls("externalcontact/cancel_groupmsg_send")
            if c["errcode"] == 0] == [msgid]
    status, refused = await _control(stack, "confirm_groupmsg", {"msgid": msgid,
                                                                 "userid": "lina"})
    assert status == 409, refused  # lina can no longer send what HQ stopped
    row = await _firing(stack, firing)
    assert (row["cancelled"], row["sent"], row["stopped"], row["can_stop"]) == (
        1, 0, True, False)
    assert stack.calls("message/send") == []  # lina is not told of a stopped 群发


async def test_a_stop_racing_a_crashed_call_the_guide_sent_counts_it_sent(
        stop_stack: Stack) -> None:
    stack = stop_stack
    firing, msgid = await _crashed_after_the_call(stack)
    status, _ = await _control(stack, "confirm_groupmsg", {"msgid": msgid, "userid": "lina"})
    assert status == 200  # lina sent it before HQ stopped it
    await stack.admin("/drops/stop_drop/stop", method="POST", json={"firing": firing})
    await _retry_stale(stack)
    assert stack.calls("externalcontact/cancel_groupmsg_send") == []
    await stack.runtime.services.sop.track("acme")
    row = await _firing(stack, firing)
    assert (row["confirmed"], row["reached"], row["stopped"]) == (1, 1, True)


async def test_refusals_name_the_field(stop_stack: Stack) -> None:
    stack = stop_stack
    for path, body, code, field in (
            ("/drops/nosuch/stop", {"firing": "manual:00"}, 404, "drop_id"),
            ("/drops/stop_drop/stop", {"firing": "manual:00"}, 404, "firing"),
            ("/drops/stop_drop/stop", {"firing": "has space"}, 400, "firing"),
            ("/drops/stop_drop/stop", {}, 400, "firing"),
            ("/drops/nosuch/sends", None, 404, "drop_id")):
        method = "GET" if body is None else "POST"
        status, answer = await stack.admin(path, method=method, json=body)
        assert status == code and answer["field"] == field, (path, answer)


async def test_the_console_lists_sends_and_stops_one(stop_stack: Stack) -> None:
    stack = stop_stack
    await _customers(stack)
    _, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    await stack.runtime.services.sop.tick("acme")
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, content, _ = await console.get("/console/acme/content")
        assert status == 200 and 'href="/console/acme/drops/stop_drop"' in content
        status, html, _ = await console.get("/console/acme/drops/stop_drop")
        assert status == 200 and "群发记录：停止测试投放" in html
        row = re.search(rf'data-firing="{re.escape(fired["firing"])}".*?</tr>', html, re.S)
        assert row and "停止群发" in row.group(0), html
        cells = re.findall(r'<td class="n">(\d+)</td>', row.group(0))
        assert cells[:2] == ["3", "3"]  # 3 tasks for 3 customers
        form = {"_csrf": csrf_in(html), "firing": fired["firing"]}
        status, _, resp = await console.post("/console/acme/drops/stop_drop/stop", form)
        assert status == 303, resp.headers
        status, page, _ = await console.get(resp.headers["Location"])
        assert "已停止：0 个任务未发出，3 个在企业微信中取消" in page, page
        row = re.search(rf'data-firing="{re.escape(fired["firing"])}".*?</tr>', page, re.S)
        assert row and "data-stopped" in row.group(0) and "<button" not in row.group(0)
        status, refused, _ = await console.post("/console/acme/drops/stop_drop/stop",
                                                {**form, "firing": "manual:00"})
        assert status == 404 and "没有这次发送" in refused, refused
    finally:
        await console.close()


async def test_the_task_listing_pages_with_a_cursor(stop_stack: Stack) -> None:
    """`GET …/tasks` a page at a time: newest first, `limit` of them, `next` as `after` until
    it is null; with the guide and status filters too; a cursor it never gave is refused."""
    stack = stop_stack
    await _customers(stack)
    status, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    assert status == 200 and fired["tasks"] == 3, fired
    _, everything = await stack.admin("/tasks")
    tasks = [(t["id"], t["guide"], t["status"]) for t in everything["tasks"]]
    first = tasks[0][0]
    assert tasks == [(first, "zhou", "queued"), (first - 1, "wang", "queued"),
                     (first - 2, "lina", "queued")] and everything["next"] is None
    seen, after = [], ""
    while after is not None:
        status, page = await stack.admin(f"/tasks?limit=2&after={after}")
        assert status == 200, page
        seen.append([t["id"] for t in page["tasks"]])
        after = page["next"]
    assert seen == [[first, first - 1], [first - 2]]
    # the filters page too: after the newest task, wang's is next and zhou has no more
    _, one = await stack.admin("/tasks?limit=1")
    assert [t["id"] for t in one["tasks"]] == [first] and one["next"]
    _, wang = await stack.admin(f"/tasks?guide=wang&after={one['next']}")
    assert [t["id"] for t in wang["tasks"]] == [first - 1] and wang["next"] is None
    _, zhou = await stack.admin(f"/tasks?guide=zhou&after={one['next']}")
    assert zhou == {"tasks": [], "next": None}
    _, queued = await stack.admin(f"/tasks?status=queued&limit=1&after={one['next']}")
    assert [t["id"] for t in queued["tasks"]] == [first - 1] and queued["next"]
    _, last = await stack.admin(f"/tasks?status=queued&after={queued['next']}")
    assert [t["id"] for t in last["tasks"]] == [first - 2] and last["next"] is None
    for bad in ("limit=0", "limit=1001", "after=bm90LWEtY3Vyc29y", "after=a%20b"):
        status, body = await stack.admin(f"/tasks?{bad}")
        assert status == 400 and body["field"] in ("limit", "after"), (bad, body)


async def _notices(stack: Stack) -> dict[str, str]:
    """Each guide's notice of the 群发 (群发 waiting for you): its status."""
    _, tasks = await stack.admin("/tasks")
    return {t["guide"]: t["status"] for t in tasks["tasks"] if t["kind"] == "notify"}


async def test_a_stop_cancels_the_guides_queued_notices_and_counts_them(
        stop_stack: Stack) -> None:
    """The 群发 sent to WeCom, their notices to the guides still queued: the stop cancels
    them with their tasks and says how many; a stop that only cancels a notice (its task
    confirmed since the stop read it) still reports a change, so 操作日志 records it."""
    from guidebot.db.repo import sop_tasks as tasks_repo

    stack = stop_stack
    await _customers(stack)
    sop = stack.runtime.services.sop
    _, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    # one delivery pass: the 群发 reach WeCom, the notices they queue wait for the next pass
    assert await sop.dispatcher.deliver("acme") == 3
    assert await _notices(stack) == {g: "queued" for g in GUIDES}
    msgids = await _msgids(stack)
    _, tasks = await stack.admin("/tasks?guide=lina")
    [lina] = [t["id"] for t in tasks["tasks"] if t["kind"] == "guide_task"]
    # lina sends hers and guidebot sees it before the stop's write: the stop read her task
    # as sent (stoppable), what it finds then is a confirmed task and its queued notice
    status, _ = await _control(stack, "confirm_groupmsg", {"msgid": msgids["lina"],
                                                           "userid": "lina"})
    assert status == 200
    assert await sop.tracker.check_tasks("acme", [lina]) == 1
    db = stack.runtime.services.db
    async with db.write() as s:
        assert await tasks_repo.stop_tasks(s, tenant="acme", ids=[lina], now=T0) == (
            [], [], 1)
    assert (await _notices(stack))["lina"] == "cancelled"

    status, stopped = await stack.admin("/drops/stop_drop/stop", method="POST",
                                        json={"firing": fired["firing"]})
    assert status == 200, stopped
    assert (stopped["cancelled_in_wecom"], stopped["already_sent"],
            stopped["notices_cancelled"]) == (2, 1, 2), stopped
    assert await _notices(stack) == {g: "cancelled" for g in GUIDES}
    _, audit = await stack.admin("/audit")
    assert [e["action"] for e in audit["items"]] == [
        "POST /api/v1/{tenant}/drops/{drop_id}/stop", "POST /api/v1/{tenant}/drops/{drop_id}/fire"]
