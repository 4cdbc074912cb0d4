"""The event pipeline on the real app: a burst's welcomes each sent once inside WeCom's window,
failed items retried from the database (3 tries in all), handled items never handled again
after a restart, the welcome's 20 s, the tag-library handler and the callback size limit."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot import lanes
from guidebot.app import RUNTIME, create_app
from guidebot.backoff import Backoff
from guidebot.db.types import utcnow
from guidebot.inbox import InboxPolicy
from tests.support.inbox import inbox_on
from tests.support.stack import FAST_BACKOFF, Stack, start_stack
from tests.support.turns import TurnCounter
from tests.support.wecom import encrypt_callback

BURST = 100


async def _fault(stack: Stack, path: str, errcode: int, times: int) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": errcode, "times": times}) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_burst_of_adds_gets_every_welcome_once_inside_the_window(stack: Stack) -> None:
    """100 customers add guides at once: each WelcomeCode is used by exactly one successful
    send_welcome_msg (the sandbox refuses a code after 20 s, so success means in time), and
    everything after the welcome (profile, SOP enrolment) happened for each of them."""
    adds = await asyncio.gather(*(stack.sandbox.simulate_add_contact(
        "acme", userid=f"guide{i % 7}", external_userid=f"wmBURST{i:04d}", name=f"客{i}")
        for i in range(BURST)))
    assert all(a["delivery"]["status"] == 200 for a in adds)
    await stack.runtime.drain()
    welcomes = stack.calls("externalcontact/send_welcome_msg")
    sent = Counter(c["body"]["welcome_code"] for c in welcomes if c["errcode"] == 0)
    assert sent == Counter({a["welcome_code"]: 1 for a in adds})
    assert [c for c in welcomes if c["errcode"] != 0] == []
    for add in adds[:: BURST // 10]:
        status, view = await stack.admin(f"/customers/{add['external_userid']}")
        assert status == 200 and view["name"].startswith("客") and view["profile_fetched"]
    rows = await stack.inbox_rows()
    assert len(rows) == BURST
    assert {r.outcome for r in rows} == {"on_contact_added"}
    assert {r.attempts for r in rows} == {1}


async def test_a_failing_item_is_retried_and_succeeds_on_the_third_try(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="林")
    await stack.runtime.drain()
    await _fault(stack, "externalcontact/get", 60011, 2)  # not retried by the client itself
    edit = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "edit_external_contact",
        "UserID": "lina", "ExternalUserID": added["external_userid"]})
    assert edit["delivery"]["status"] == 200
    await stack.runtime.drain()
    edited = [r for r in await stack.inbox_rows() if r.outcome != "on_contact_added"]
    assert [(r.outcome, r.attempts) for r in edited] == [("on_contact_edited", 3)]


async def test_an_item_failing_every_time_is_given_up_after_three_tries(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="guidebot.inbox")
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="林")
    await stack.runtime.drain()
    await _fault(stack, "externalcontact/get", 60011, 10)
    await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "edit_external_contact",
        "UserID": "lina", "ExternalUserID": added["external_userid"]})
    await stack.runtime.drain()
    edited = [r for r in await stack.inbox_rows() if r.outcome != "on_contact_added"]
    assert [(r.outcome, r.attempts) for r in edited] == [("failed", 3)]
    assert edited[0].last_error.startswith("WeComApiError: externalcontact/get: errcode=60011")
    gets = [c for c in stack.calls("externalcontact/get") if c["errcode"] == 60011]
    assert len(gets) == 3
    failures = [(r.getMessage(), bool(r.exc_info)) for r in caplog.records
                if r.name == "guidebot.inbox" and "failed" in r.getMessage()]
    assert failures == [  # ids and the error's type only: no customer data in the log
        (f"inbox item {edited[0].id} tenant=acme attempt 1 failed: WeComApiError", False),
        (f"inbox item {edited[0].id} tenant=acme attempt 2 failed: WeComApiError", False),
        (f"inbox item {edited[0].id} tenant=acme attempt 3 failed: WeComApiError (giving up)",
         True)]


async def test_handled_items_are_not_handled_again_after_a_restart(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    try:
        added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
        await stack.runtime.drain()
        startup = {"gettoken", "externalcontact/get_corp_tag_list", "department/simplelist",
                   "department/get", "user/list_id", "user/simplelist", "user/get"}  # any start
        calls_before = [c for c in stack.calls() if c["path"] not in startup]
        rows_before = [(r.id, r.outcome, r.attempts) for r in await stack.inbox_rows()]
        await stack.app.shutdown()
        await stack.app.cleanup()
        app = create_app(replace(stack.settings), start_jobs=False, backoff=FAST_BACKOFF)
        await aiohttp_server(app)
        await app[RUNTIME].drain()
        await asyncio.sleep(0.3)  # a claim pass more: still nothing
        async with app[RUNTIME].services.db.read() as s:
            from sqlalchemy import select

            from guidebot.db.models import FollowEvent, InboxItem

            items = list((await s.execute(select(InboxItem))).scalars())
            follow_events = list((await s.execute(select(FollowEvent))).scalars())
        assert [(r.id, r.outcome, r.attempts) for r in items] == rows_before
        assert len(follow_events) == 1
        assert [c for c in stack.calls() if c["path"] not in startup] == calls_before
        assert [c["body"]["welcome_code"] for c in
                stack.calls("externalcontact/send_welcome_msg")] == [added["welcome_code"]]
        await app.shutdown()
        await app.cleanup()
    finally:
        await stack.http.close()


async def test_a_welcome_held_up_for_five_seconds_still_goes_inside_its_20_s(
        stack: Stack) -> None:
    """WeCom rate-limits send_welcome_msg for about five seconds (four outbox attempts of
    three client tries each): the welcome is retried inline and sent, not expired."""
    await _fault(stack, "externalcontact/send_welcome_msg", 45009, 12)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    welcomes = stack.calls("externalcontact/send_welcome_msg")
    assert [c["errcode"] for c in welcomes] == [45009] * 12 + [0]
    assert welcomes[-1]["body"]["welcome_code"] == added["welcome_code"]
    async with stack.runtime.services.db.read() as s:
        from guidebot.db.repo import outbox as outbox_repo

        row = await outbox_repo.get_by_key(s, tenant="acme",
                                           key=f"welcome:{added['welcome_code']}")
    assert row is not None and row.status == "done" and row.attempts == 5


async def test_a_tag_made_in_the_wecom_console_reaches_the_library(stack: Stack) -> None:
    await stack.runtime.services.tags.sync("acme")
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/tags", json={
            "group_name": "直播", "tag": [{"name": "双12直播间"}]}) as resp:
        assert resp.status == 200, await resp.text()
    await stack.runtime.drain()
    rows = [r for r in await stack.inbox_rows() if r.outcome]
    assert rows and {r.outcome for r in rows} == {"on_corp_tag_changed"}
    assert await stack.runtime.services.tags.resolve("acme", ["双12直播间"])


async def test_the_callback_body_limit_is_64_kib(stack: Stack) -> None:
    xml = ("<xml><ToUserName>x</ToUserName><FromUserName>sys</FromUserName>"
           "<CreateTime>1700000000</CreateTime><MsgType>event</MsgType>"
           "<Event>padding_test</Event><Pad>{}</Pad></xml>")
    signed = encrypt_callback(stack.tenant(), xml.format("p" * 100))
    room = 64 * 1024 - len(signed.body)
    fits = replace(signed, body=signed.body.replace(b"</xml>", b" " * room + b"</xml>"))
    too_big = replace(signed, body=signed.body.replace(b"</xml>", b" " * (room + 1) + b"</xml>"))
    assert len(fits.body) == 64 * 1024 and len(too_big.body) == 64 * 1024 + 1
    assert await stack.post_signed(too_big) == 413
    assert await stack.post_signed(fits) == 200


async def test_a_failed_item_waits_its_backoff_before_any_process_claims_it(
        db_url: str) -> None:
    """A failed item is released for its retry delay (1 s after the first failure by
    default; 30 s here): its lease time is then, and no one claims it meanwhile."""
    tries: list[int] = []

    async def failing(item_id: int, tenant: str, payload: str) -> Any:
        tries.append(item_id)
        raise RuntimeError("boom")

    policy = InboxPolicy(retry=Backoff(base_s=30.0, factor=2.0, max_s=60.0, attempts=3,
                                       jitter=0.0), poll_s=0.01)
    async with inbox_on(db_url, failing, policy=policy) as inbox:
        item_id = await inbox.writer.submit("acme", "<xml>retry</xml>")
        assert item_id is not None
        before = utcnow()
        inbox.processor.start()
        for _ in range(500):
            item = await inbox.item(item_id)
            if item.attempts == 1:
                break
            await asyncio.sleep(0.02)
        after = utcnow()
        assert (item.attempts, item.last_error, item.lease_owner) == (1, "RuntimeError: boom",
                                                                      "")
        assert item.processed_at is None
        assert before + timedelta(seconds=30) <= item.lease_until <= after + timedelta(
            seconds=30)
        await asyncio.sleep(0.3)  # many polls: still waiting, not tried again
        assert tries == [item_id]


async def test_one_worker_handles_every_item_in_turn_each_under_its_own_id(
        db_url: str) -> None:
    """With room for one urgent item at a time, each finished item frees its place for the
    next; `process` gets each item's own id."""
    seen: list[int] = []

    async def process(item_id: int, tenant: str, payload: str) -> str:
        seen.append(item_id)
        return "handled"

    async with inbox_on(db_url, process, workers=1,
                        policy=InboxPolicy(poll_s=0.01)) as inbox:
        ids = [await inbox.writer.submit("acme", f"<xml>{n}</xml>") for n in range(3)]
        inbox.processor.start()
        rows = await inbox.processed(3)
        assert sorted(r.id for r in rows) == sorted(ids)
        assert {r.outcome for r in rows} == {"handled"}
        assert sorted(seen) == sorted(ids)


async def test_items_take_turns_fewer_of_them_while_callbacks_are_being_stored(
        db_url: str) -> None:
    """A claim starts its items together; they go through the loop's turns (guidebot/lanes.py)
    `steps_per_turn` at a time, and `steps_per_turn_acking` at a time while a callback is
    being stored, so acknowledgements are not stuck behind a wave of handling."""
    counter, starts = TurnCounter(), []

    async def process(item_id: int, tenant: str, payload: str) -> str:
        starts.append(counter.turn)
        return "handled"

    policy = InboxPolicy(poll_s=0.01, steps_per_turn=8, steps_per_turn_acking=2)
    async with inbox_on(db_url, process, policy=policy) as inbox:
        # Submitted together, stored in one transaction: one claim finds them all.
        await asyncio.gather(*(inbox.writer.submit("acme", f"<xml>acking {n}</xml>")
                               for n in range(40)))
        counter.start()
        with inbox.processor.acknowledging():
            inbox.processor.start()
            await inbox.processed(40)
        assert len(starts) == 40
        assert max(Counter(starts).values()) == 2

        starts.clear()
        await asyncio.gather(*(inbox.writer.submit("acme", f"<xml>quiet {n}</xml>")
                               for n in range(40)))
        inbox.processor.wake()
        await inbox.processed(80)
        counter.stop()
        assert len(starts) == 40
        assert max(Counter(starts).values()) == 8


async def test_an_item_past_its_urgent_part_frees_its_place_for_the_next(db_url: str) -> None:
    """With room for one urgent item: the first item reaches its follow-ups (lanes.later)
    and waits there for the second, which can only run because the first no longer holds
    the urgent place."""
    second_done = asyncio.Event()
    order: list[str] = []

    async def process(item_id: int, tenant: str, payload: str) -> str:
        if "first" in payload:
            order.append("first: urgent part")
            await lanes.later()
            await asyncio.wait_for(second_done.wait(), timeout=30)  # a hang guard
            order.append("first: follow-ups")
        else:
            order.append("second")
            second_done.set()
        return "handled"

    async with inbox_on(db_url, process, workers=1,
                        policy=InboxPolicy(poll_s=0.01)) as inbox:
        await inbox.writer.submit("acme", "<xml>first</xml>")
        inbox.processor.start()
        while not order:
            await asyncio.sleep(0.01)
        await inbox.writer.submit("acme", "<xml>second</xml>")
        inbox.processor.wake()
        rows = await inbox.processed(2)
        assert {r.outcome for r in rows} == {"handled"} and len(rows) == 2
        assert order == ["first: urgent part", "second", "first: follow-ups"]


async def test_follow_ups_take_turns_and_each_gives_its_turn_back(db_url: str) -> None:
    """At most `follow_ups` items past their urgent part at once (one here): each waits for
    a turn in lanes.later(), and a finished one (or a failed one) gives it back, so every
    item gets through; an item that never reaches its follow-ups has no turn to give."""
    running: list[int] = []
    most = 0

    async def process(item_id: int, tenant: str, payload: str) -> str:
        nonlocal most
        if "urgent only" in payload:  # never reaches lanes.later(): holds no turn to give
            await asyncio.sleep(0.02)
            return "handled"
        await lanes.later()
        running.append(item_id)
        most = max(most, len(running))
        await asyncio.sleep(0.05)
        running.remove(item_id)
        if "fails" in payload:
            raise RuntimeError("a follow-up failed")
        return "handled"

    policy = InboxPolicy(follow_ups=1, poll_s=0.01, retry=Backoff(
        base_s=30.0, factor=2.0, max_s=60.0, attempts=1, jitter=0.0))
    async with inbox_on(db_url, process, policy=policy) as inbox:
        for n in range(6):
            await inbox.writer.submit("acme", f"<xml>{n}{' fails' if n % 2 else ''}</xml>")
        for n in range(4):
            await inbox.writer.submit("acme", f"<xml>{n} urgent only</xml>")
        inbox.processor.start()
        rows = await inbox.processed(10)
        assert sorted(r.outcome for r in rows) == ["failed"] * 3 + ["handled"] * 7
        assert most == 1


async def test_outcomes_the_database_refuses_are_logged_and_the_item_comes_back(
        db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Recording a handled item fails (here a trigger refuses it): the failure is logged
    with how many outcomes were lost, the processor keeps going, and the item, still
    unhandled in the database, is claimed again once its lease runs out and recorded."""

    caplog.set_level(logging.ERROR, logger="guidebot.inbox")
    handled: list[int] = []

    async def process(item_id: int, tenant: str, payload: str) -> str:
        handled.append(item_id)
        return "handled"

    async with inbox_on(db_url, process, policy=InboxPolicy(poll_s=0.01, lease_s=1.0)
                        ) as inbox:
        await inbox.refuse_updates("refuse_outcome", when="NEW.processed_at IS NOT NULL")
        item_id = await inbox.writer.submit("acme", "<xml>refused once</xml>")
        inbox.processor.start()
        for _ in range(3000):  # a hang guard, not a timing bound
            if any(r.exc_info for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        assert [r.getMessage() for r in caplog.records] == [
            "recording 1 inbox outcomes failed"]
        assert "refused" in str(caplog.records[0].exc_info[1])  # type: ignore[index]
        assert (await inbox.item(item_id)).processed_at is None
        await inbox.allow_updates("refuse_outcome")
        [row] = await inbox.processed(1)
        assert (row.id, row.outcome) == (item_id, "handled")
        # at least once: handled again after the loss (more than twice if the lease ran out
        # again before the trigger was gone, on a very slow machine)
        assert set(handled) == {item_id} and len(handled) >= 2


async def test_at_most_workers_items_are_in_their_urgent_part_at_once(db_url: str) -> None:
    """workers=2: of five items, two are handled at a time, however many are waiting."""
    running: list[int] = []
    most = 0
    release = asyncio.Event()

    async def process(item_id: int, tenant: str, payload: str) -> str:
        nonlocal most
        running.append(item_id)
        most = max(most, len(running))
        if len(running) == 2:
            release.set()
        await asyncio.wait_for(release.wait(), timeout=30)  # a hang guard
        await asyncio.sleep(0.05)  # room for a third to be claimed, were there a place
        running.remove(item_id)
        return "handled"

    async with inbox_on(db_url, process, workers=2,
                        policy=InboxPolicy(poll_s=0.01)) as inbox:
        for n in range(5):
            await inbox.writer.submit("acme", f"<xml>{n}</xml>")
        inbox.processor.start()
        assert len(await inbox.processed(5)) == 5
        assert most == 2


async def test_a_failed_claim_is_logged_and_claiming_goes_on(
        db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The database refuses a claim (here a trigger): the claim loop logs it and, once the
    database takes claims again, claims and handles the waiting item."""

    caplog.set_level(logging.ERROR, logger="guidebot.inbox")
    async def process(item_id: int, tenant: str, payload: str) -> str:
        return "handled"

    async with inbox_on(db_url, process, policy=InboxPolicy(poll_s=0.01)) as inbox:
        await inbox.refuse_updates("refuse_claim", when="NEW.lease_owner <> ''")
        item_id = await inbox.writer.submit("acme", "<xml>claimed later</xml>")
        inbox.processor.start()
        for _ in range(3000):  # a hang guard, not a timing bound
            if caplog.records:
                break
            await asyncio.sleep(0.01)
        assert caplog.records[0].getMessage() == "inbox claim failed; trying again"
        assert "refused" in str(caplog.records[0].exc_info[1])  # type: ignore[index]
        await inbox.allow_updates("refuse_claim")
        [row] = await inbox.processed(1)
        assert (row.id, row.outcome) == (item_id, "handled")


async def test_at_start_on_sqlite_a_dead_process_leases_end_at_once(db_url: str) -> None:
    """SQLite has one process: at start every lease (however long) is a dead process's,
    and its items are claimable at once. PostgreSQL's processes may be alive: their leases
    are kept until they run out."""
    from sqlalchemy import update

    from guidebot.db.models import InboxItem

    async def process(item_id: int, tenant: str, payload: str) -> str:
        return "handled"

    async with inbox_on(db_url, process, policy=InboxPolicy(poll_s=0.01)) as inbox:
        item_id = await inbox.writer.submit("acme", "<xml>left by a dead process</xml>")
        async with inbox.db.write() as s:
            await s.execute(update(InboxItem).values(
                lease_owner="host:1:dead", lease_until=utcnow() + timedelta(hours=1)))
        released = await inbox.processor.recover()
        item = await inbox.item(item_id)
        if db_url.startswith("sqlite"):
            assert (released, item.lease_owner, item.lease_until) == (1, "", None)
            inbox.processor.start()
            [row] = await inbox.processed(1)
            assert row.outcome == "handled"
        else:
            assert (released, item.lease_owner) == (0, "host:1:dead")


async def test_a_long_item_keeps_its_lease_so_another_process_does_not_take_it(
        db_url: str) -> None:
    """An item handled for longer than its lease (0.3 s here, 15 s by default) has the lease
    renewed every third of it while it runs (also when it arrives after turns with nothing
    to renew): a second processor on the same database, which claims whatever lease has run
    out, never takes it, and it is handled once."""
    handled: list[str] = []
    entered = asyncio.Event()

    async def slow(item_id: int, tenant: str, payload: str) -> str:
        handled.append("first")
        entered.set()
        await asyncio.sleep(1.2)
        return "handled"

    async def second(item_id: int, tenant: str, payload: str) -> str:
        handled.append("second")
        return "handled"

    policy = InboxPolicy(poll_s=0.01, lease_s=0.3)
    async with inbox_on(db_url, slow, policy=policy) as inbox, \
            inbox_on(db_url, second, policy=policy) as other:
        inbox.processor.start()
        await asyncio.sleep(0.25)  # the renewal's first turns find nothing to renew
        item_id = await inbox.writer.submit("acme", "<xml>slow</xml>")
        inbox.processor.wake()
        await asyncio.wait_for(entered.wait(), timeout=30)  # a hang guard
        other.processor.start()
        leases = []
        for _ in range(5):
            await asyncio.sleep(0.2)
            item = await inbox.item(item_id)
            leases.append((item.lease_owner, item.lease_until))
        [row] = await inbox.processed(1)
        assert (row.id, row.outcome) == (item_id, "handled")
        assert handled == ["first"]
        assert {owner for owner, _ in leases} == {inbox.processor.owner}
        assert len({until for _, until in leases}) >= 3  # moved on while it ran


async def test_a_failed_inbox_write_answers_every_waiter_and_the_batches_behind_it(
        db_url: str) -> None:
    """Storing callbacks fails (here: the schema is not there yet): every request waiting
    on a failed batch hears the database's error (its webhook answers 500 and WeCom sends
    again), the batches queued behind it are still tried, so no request is left waiting,
    and once the database works the same writer stores again."""
    from guidebot.db.engine import Database
    from guidebot.db.migrate import upgrade_async
    from guidebot.inbox import InboxWriter

    db = Database(db_url)
    writer = InboxWriter(db, max_batch=1)
    try:
        results = await asyncio.wait_for(asyncio.gather(
            *(writer.submit("acme", f"<xml>{n}</xml>") for n in range(3)),
            return_exceptions=True), timeout=30)  # a hang guard, not a timing bound
        assert [type(r).__name__ for r in results if not isinstance(r, Exception)] == []
        assert all("inbox" in str(r) for r in results), results
        await upgrade_async(db_url)
        assert await writer.submit("acme", "<xml>stored</xml>") == 1
    finally:
        await db.dispose()


def test_items_are_ordered_per_customer_or_per_employee_by_their_order_key() -> None:
    """A customer's items (callbacks or internal events) one after another, an employee's
    own app messages one after another, the rest in any order; keys fit their column."""
    from guidebot.inbox import order_key

    internal = '{"internal": "OrderPaid", "fields": {"external_userid": %s}}'
    assert order_key(internal % '"wmCUST01"') == "c:wmCUST01"
    assert order_key(internal % "null") == ""
    assert order_key(internal % json.dumps("w" * 200)) == "c:" + "w" * 158
    assert order_key("<xml><FromUserName><![CDATA[sys]]></FromUserName>"
                     "<ExternalUserID><![CDATA[wmCUST02]]></ExternalUserID></xml>") == "c:wmCUST02"
    assert order_key("<xml><ExternalUserID> wmCUST03 </ExternalUserID></xml>") == "c:wmCUST03"
    assert order_key("<xml><ExternalUserID>" + "x" * 200 + "</ExternalUserID></xml>") == (
        "c:" + "x" * 158)
    assert order_key("<xml><FromUserName><![CDATA[lina]]></FromUserName>"
                     "<MsgType>text</MsgType></xml>") == "u:lina"
    assert order_key("<xml><FromUserName>" + "y" * 200 + "</FromUserName></xml>") == (
        "u:" + "y" * 158)
    assert order_key("<xml><FromUserName><![CDATA[sys]]></FromUserName>"
                     "<Event>change_external_tag</Event></xml>") == ""
    assert order_key("<xml><ExternalUserID></ExternalUserID>"
                     "<FromUserName>sys</FromUserName></xml>") == ""
