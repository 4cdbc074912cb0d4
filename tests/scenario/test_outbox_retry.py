"""The outbox's retries and deadlines, and the inbox's staging of internal events, against a
real database: what `retry_due` takes and in what order, when a row expires and with which
error, how many attempts a failing call gets, and that a row another process holds is not
sent twice."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from guidebot import events as ev
from guidebot import inbox, outbox
from guidebot.backoff import Backoff
from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.models import OutboxItem
from guidebot.db.repo import outbox as outbox_repo
from guidebot.db.types import utcnow
from guidebot.errors import NoRelation, WeComApiError, WeComRateLimited, WeComTransportError
from guidebot.outbox import CallStatus, Outbox

NOW_RETRY = Backoff(base_s=0.0, factor=1.0, max_s=0.0, attempts=3, jitter=0.0)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade_async(db_url)
    database = Database(db_url)
    yield database
    await database.dispose()


class Clock:
    """The outbox's clock, moved by hand (the rows' own stamps keep the real time)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else utcnow() + self.ahead


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(outbox, "utcnow", c)
    yield c


class Calls:
    """An executor that records its payloads; fails while `failing` is set."""

    def __init__(self, *, failing: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.failing = failing
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.failing:
            raise WeComRateLimited(45009, "api freq out of limit", path="test")
        self.sent.append(payload)
        return {"errcode": 0}


async def row(db: Database, key: str) -> OutboxItem:
    async with db.read() as s:
        item = await outbox_repo.get_by_key(s, tenant="acme", key=key)
    assert item is not None
    return item


async def test_a_failed_row_past_its_deadline_expires_with_its_error_and_the_next_is_retried(
        db: Database, clock: Clock) -> None:
    box = Outbox(db, retry=NOW_RETRY)
    failing = Calls(failing=True)
    deadline = utcnow() + timedelta(seconds=5)
    first = await box.run(tenant="acme", key="w1", kind="welcome", payload={"n": 1},
                          call=failing, deadline=deadline)
    assert (first.status, first.error) == (CallStatus.FAILED,
                                           "WeComRateLimited: errcode=45009")
    second = await box.run(tenant="acme", key="t1", kind="task", payload={"n": 2}, call=failing)
    assert second.status is CallStatus.FAILED

    clock.fixed = deadline  # the deadline itself is too late
    ok = Calls()
    assert await box.retry_due({"welcome": ok, "task": ok}) == 2
    assert ok.sent == [{"n": 2}]  # the expired welcome is not sent; the row after it is
    expired = await row(db, "w1")
    assert (expired.status, expired.last_error) == ("expired", "WeComRateLimited: errcode=45009")
    assert (await row(db, "t1")).status == "done"


async def test_a_dead_process_row_past_its_deadline_expires_as_deadline_passed(
        db: Database, clock: Clock) -> None:
    past = utcnow() - timedelta(seconds=1)
    async with db.write() as s:  # "sending" under a lease that ran out, no error recorded
        await outbox_repo.insert_if_new(s, tenant="acme", key="w2", kind="welcome",
                                        payload="{}", due_at=past, deadline_at=past,
                                        lease_owner="1:dead", lease_until=past)
    ok = Calls()
    assert await Outbox(db).retry_due({"welcome": ok}) == 1
    assert ok.sent == []
    item = await row(db, "w2")
    assert (item.status, item.last_error) == ("expired", "deadline passed")


async def test_a_call_with_its_deadline_passed_or_failing_to_it_is_expired(
        db: Database, clock: Clock) -> None:
    box = Outbox(db)
    late = await box.run(tenant="acme", key="w3", kind="welcome", payload={}, call=Calls(),
                         deadline=utcnow() - timedelta(seconds=1), until_deadline=True)
    assert (late.status, late.result, late.error) == (
        CallStatus.EXPIRED, None, "deadline passed before the first attempt")
    item = await row(db, "w3")
    assert (item.status, item.last_error) == ("expired",
                                              "deadline passed before the first attempt")

    failing = Calls(failing=True)  # retried inline (0.5 s, 1 s, …) until the deadline is near
    missed = await box.run(tenant="acme", key="w4", kind="welcome", payload={}, call=failing,
                           deadline=utcnow() + timedelta(seconds=1.2), until_deadline=True)
    assert (missed.status, missed.result, missed.error) == (
        CallStatus.EXPIRED, None, "WeComRateLimited: errcode=45009")
    item = await row(db, "w4")
    assert (item.status, item.last_error, item.attempts) == (
        "expired", "WeComRateLimited: errcode=45009", 3)


async def test_a_failing_call_gets_exactly_its_attempts_then_is_dead(
        db: Database, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="guidebot.outbox")
    box = Outbox(db, retry=NOW_RETRY)  # 3 attempts in all
    failing = Calls(failing=True)
    first = await box.run(tenant="acme", key="t2", kind="task", payload={}, call=failing)
    assert first.status is CallStatus.FAILED
    statuses = []
    for _ in range(2):
        assert await box.retry_due({"task": failing}) == 1
        item = await row(db, "t2")
        statuses.append((item.status, item.attempts))
    assert statuses == [("failed", 2), ("dead", 3)]
    item_id = (await row(db, "t2")).id
    assert caplog.messages == [
        f"outbox item {item_id} tenant=acme kind=task attempt {n}: WeComRateLimited: "
        f"errcode=45009 ({status})" for n, status in ((1, "failed"), (2, "failed"), (3, "dead"))]
    assert await box.retry_due({"task": failing}) == 0


async def test_retries_are_taken_at_most_limit_at_a_time_in_order(db: Database,
                                                                 clock: Clock) -> None:
    past = utcnow() - timedelta(seconds=1)
    async with db.write() as s:
        for n in range(101):
            await outbox_repo.insert_if_new(s, tenant="acme", key=f"t-{n:03d}", kind="task",
                                            payload=json.dumps({"n": n}), due_at=past,
                                            deadline_at=None, status="failed")
    ok = Calls()
    box = Outbox(db)
    assert await box.retry_due({"task": ok}) == 100
    assert [p["n"] for p in ok.sent] == list(range(100))
    assert await box.retry_due({"task": ok}) == 1
    assert ok.sent[-1] == {"n": 100}


async def test_a_row_being_retried_is_leased_and_not_sent_twice(db: Database,
                                                                clock: Clock) -> None:
    past = utcnow() - timedelta(seconds=1)
    async with db.write() as s:
        await outbox_repo.insert_if_new(s, tenant="acme", key="t3", kind="task",
                                        payload="{}", due_at=past, deadline_at=None,
                                        status="failed")
    slow = Calls()
    slow.hold = asyncio.Event()
    one, two = Outbox(db), Outbox(db)  # two processes
    running = asyncio.create_task(one.retry_due({"task": slow}))
    await asyncio.wait_for(slow.entered.wait(), 10)
    other = Calls()
    clock.ahead = timedelta(seconds=outbox.LEASE_S - 2)  # the lease still holds
    assert await two.retry_due({"task": other}) == 0
    clock.ahead = timedelta(seconds=outbox.LEASE_S + 1)  # as if `one` had died: taken over
    assert await two.retry_due({"task": other}) == 1
    slow.hold.set()
    assert await running == 1
    assert len(other.sent) == 1


async def test_rows_registered_for_a_batch_are_left_to_it_until_stale(
        db: Database, clock: Clock) -> None:
    box = Outbox(db)
    async with db.write() as s:
        ids = await box.register_many(s, tenant="acme", rows=[("t4", "task", {"n": 4})])
    assert list(ids) == ["t4"]
    ok = Calls()
    assert await box.retry_due({"task": ok}) == 0  # its batch is attempting it
    clock.ahead = timedelta(seconds=outbox.STALE_S + 1)  # the batch's process died
    assert await box.retry_due({"task": ok}) == 1
    assert ok.sent == [{"n": 4}]


async def test_an_internal_event_is_staged_once_by_its_key(db: Database) -> None:
    event = ev.TagsMarked(tenant="acme", created_at=datetime.now(UTC), ref="r1",
                          external_userid="wmX", guide="lina", tags=("门店扫码",))
    async with db.write() as s:
        assert await inbox.stage(s, event=event, key="tags_marked:r1") is True
        assert await inbox.stage(s, event=event, key="tags_marked:r1") is False
        assert await inbox.stage_many(s, []) == 0
        assert await inbox.stage_many(s, [(event, "tags_marked:r1"),
                                          (event, "tags_marked:r2")]) == 1


async def test_a_batch_of_first_attempts_records_each_outcome_in_flight_at_most_8(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="guidebot.outbox")
    box = Outbox(db, retry=replace(NOW_RETRY, attempts=2))  # a first failure is not final
    async with db.write() as s:
        await outbox_repo.insert_if_new(s, tenant="beta", key="k-00", kind="task",
                                        payload="{}", due_at=utcnow(), deadline_at=None)
        ids = await box.register_many(s, tenant="acme", rows=[
            (f"k-{n:02d}", "task", {"n": n}) for n in range(20)])
        again = await box.register_many(s, tenant="acme", rows=[("k-00", "task", {"n": 0}),
                                                                ("k-20", "task", {"n": 20})])
    assert sorted(ids) == [f"k-{n:02d}" for n in range(20)]  # beta's k-00 is beta's
    assert list(again) == ["k-20"]  # a key claimed before is left out
    fresh = await row(db, "k-20")
    assert (fresh.status, fresh.attempts, fresh.last_error, fresh.result, fresh.deadline_at) == (
        "sending", 0, "", "", None)

    running = peak = 0

    def call(n: int) -> Any:
        async def go() -> Any:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            if n == 3:
                raise WeComRateLimited(45009, "api freq out of limit", path="test")
            if n == 4:
                raise WeComApiError(40003, "invalid external_userid", path="test")
            return outbox.Done({"msgid": f"m{n}"}) if n % 2 else {"msgid": f"m{n}"}
        return go

    outcomes = await box.attempt_many([
        outbox.Prepared(ids[f"k-{n:02d}"], "acme", "task", call(n)) for n in range(20)])
    assert peak == 8
    assert [(o.status, o.result, o.error) for o in outcomes[:6]] == [
        (CallStatus.DONE, {"msgid": "m0"}, ""), (CallStatus.DONE, {"msgid": "m1"}, ""),
        (CallStatus.DONE, {"msgid": "m2"}, ""),
        (CallStatus.FAILED, None, "WeComRateLimited: errcode=45009"),
        (CallStatus.DEAD, {"errcode": 40003}, "WeComApiError: errcode=40003"),
        (CallStatus.DONE, {"msgid": "m5"}, "")]
    rows = {n: await row(db, f"k-{n:02d}") for n in (0, 1, 3, 4)}
    assert [(r.status, r.attempts, r.last_error, json.loads(r.result or "null"))
            for r in rows.values()] == [
        ("done", 1, "", {"msgid": "m0"}), ("done", 1, "", {"msgid": "m1"}),
        ("failed", 1, "WeComRateLimited: errcode=45009", None),
        ("dead", 1, "WeComApiError: errcode=40003", None)]
    assert caplog.messages == [
        f"outbox item {ids['k-03']} tenant=acme kind=task attempt 1: WeComRateLimited: "
        "errcode=45009 (failed)",
        f"outbox item {ids['k-04']} tenant=acme kind=task attempt 1: WeComApiError: "
        "errcode=40003 (dead)"]


async def test_a_row_registered_with_the_work_is_held_by_its_lease_or_left_until_stale(
        db: Database, clock: Clock) -> None:
    box, other = Outbox(db), Outbox(db)
    async with db.write() as s:
        held = await box.register(s, tenant="acme", key="r1", kind="task", payload={"n": 1},
                                  leased=True)
        loose = await box.register(s, tenant="acme", key="r2", kind="task", payload={"n": 2})
        assert await box.register(s, tenant="acme", key="r1", kind="task",
                                  payload={"n": 9}) is None  # the key's row owns the call
    assert held is not None and loose is not None
    leased, unleased = await row(db, "r1"), await row(db, "r2")
    assert (leased.status, leased.attempts, json.loads(leased.payload)) == ("sending", 0,
                                                                             {"n": 1})
    assert leased.lease_owner and leased.lease_until is not None
    assert timedelta(seconds=outbox.LEASE_S - 5) < leased.lease_until - utcnow() <= timedelta(
        seconds=outbox.LEASE_S)
    assert (unleased.lease_owner, unleased.lease_until, unleased.deadline_at) == ("", None, None)
    assert unleased.due_at <= utcnow()

    ok = Calls()
    assert await other.retry_due({"task": ok}) == 0
    clock.ahead = timedelta(seconds=outbox.LEASE_S + 1)  # the lease ran out: taken over
    assert await other.retry_due({"task": ok}) == 1
    assert ok.sent == [{"n": 1}]
    clock.ahead = timedelta(seconds=outbox.STALE_S + 1)  # the unleased one, once stale
    assert await other.retry_due({"task": ok}) == 1
    assert ok.sent == [{"n": 1}, {"n": 2}]


async def test_first_attempts_in_order_stop_at_a_failure_and_withdraw_the_rest(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="guidebot.outbox")
    box = Outbox(db, retry=replace(NOW_RETRY, attempts=2))  # a first failure is not final
    async with db.write() as s:
        ids = [await box.register(s, tenant="acme", key=f"o{n}", kind="reply", payload={"n": n})
               for n in range(4)]
    made: list[int] = []

    def call(n: int) -> Any:
        async def go() -> Any:
            made.append(n)
            if n == 2:
                raise WeComRateLimited(45009, "api freq out of limit", path="test")
            return outbox.Done({"msgid": f"m{n}"}) if n else {"msgid": "m0"}
        return go

    recorded: list[bool] = []

    async def record(body: Any) -> None:
        recorded.append(True)
        async with db.write() as s:
            await body(s)

    outcomes = await box.attempt_in_order(
        [outbox.Prepared(int(i or 0), "acme", "reply", call(n)) for n, i in enumerate(ids)],
        record=record)
    assert made == [0, 1, 2] and recorded == [True]
    assert [(o.status, o.result, o.error) for o in outcomes] == [
        (CallStatus.DONE, {"msgid": "m0"}, ""), (CallStatus.DONE, {"msgid": "m1"}, ""),
        (CallStatus.FAILED, None, "WeComRateLimited: errcode=45009")]
    assert [((await row(db, f"o{n}")).status, (await row(db, f"o{n}")).attempts)
            for n in range(3)] == [("done", 1), ("done", 1), ("failed", 1)]
    async with db.read() as s:
        assert await outbox_repo.get_by_key(s, tenant="acme", key="o3") is None  # withdrawn
    assert caplog.messages == [f"outbox item {ids[2]} tenant=acme kind=reply attempt 1: "
                               "WeComRateLimited: errcode=45009 (failed)"]

    async with db.write() as s:  # without a recorder: its own transaction
        again = await box.register(s, tenant="acme", key="o4", kind="reply", payload={})
    outcomes = await box.attempt_in_order([outbox.Prepared(int(again or 0), "acme", "reply",
                                                           call(4))])
    assert [o.status for o in outcomes] == [CallStatus.DONE]
    assert (await row(db, "o4")).status == "done"


async def test_a_failed_row_waits_its_backoff_unleased_and_knows_its_error_type(
        db: Database, clock: Clock) -> None:
    box = Outbox(db, retry=Backoff(base_s=60.0, factor=1.0, max_s=60.0, attempts=3,
                                   jitter=0.0))
    failing = Calls(failing=True)
    first = await box.run(tenant="acme", key="b1", kind="task", payload={}, call=failing)
    assert (first.status, first.failure) == (CallStatus.FAILED, WeComRateLimited)
    item = await row(db, "b1")
    assert (item.status, item.lease_owner, item.lease_until) == ("failed", "", None)
    assert timedelta(seconds=55) < item.due_at - utcnow() <= timedelta(seconds=60)
    ok = Calls()
    assert await box.retry_due({"task": ok}) == 0  # not due yet
    clock.ahead = timedelta(seconds=61)
    assert await box.retry_due({"task": ok}) == 1 and ok.sent == [{}]

    async def gone(tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise NoRelation(84061, "not external contact", path="test")

    async def down(tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise WeComTransportError(None, "connection refused", path="test")

    lost = await box.run(tenant="acme", key="b2", kind="task", payload={}, call=gone)
    assert (lost.status, lost.failure, lost.no_relation) == (CallStatus.DEAD, NoRelation, True)
    assert lost.result == {"errcode": 84061}
    unreachable = await box.run(tenant="acme", key="b3", kind="task", payload={}, call=down)
    assert (unreachable.status, unreachable.result, unreachable.failure,
            unreachable.no_relation) == (CallStatus.FAILED, None, WeComTransportError, False)


async def test_a_call_retried_inline_keeps_its_row_leased_so_no_one_else_sends_it(
        db: Database) -> None:
    box, other = Outbox(db), Outbox(db)
    seen: list[tuple[int, str, bool, bool]] = []
    tries = 0

    async def flaky(tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal tries
        tries += 1
        if tries > 1:  # between inline tries: the row is still ours
            taken = await other.retry_due({"welcome": Calls()})
            item = await row(db, "i1")
            seen.append((taken, item.status, bool(item.lease_owner),
                         item.lease_until is not None and item.lease_until > utcnow()))
        if tries < 3:
            raise WeComRateLimited(45009, "api freq out of limit", path="test")
        return {"errcode": 0}

    outcome = await box.run(tenant="acme", key="i1", kind="welcome", payload={}, call=flaky,
                            deadline=utcnow() + timedelta(seconds=15), until_deadline=True)
    assert outcome.status is CallStatus.DONE
    assert seen == [(0, "sending", True, True), (0, "sending", True, True)]
    item = await row(db, "i1")
    assert (item.status, item.attempts) == ("done", 3)


async def test_a_row_backing_off_inline_stays_leased_so_a_dead_owner_is_taken_over_soon(
        db: Database) -> None:
    """Between inline tries the row is "sending" under this process's lease (renewed), not
    unleased: were the process killed in its backoff, another takes the row over when the
    lease runs out (seconds), not after STALE_S (minutes, the welcome long expired)."""
    box = Outbox(db)
    failed = asyncio.Event()
    release = asyncio.Event()

    first_try: list[OutboxItem] = []

    async def flaky(tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not failed.is_set():
            failed.set()
            first_try.append(await row(db, "i2"))  # registered leased, before the first try
            raise WeComRateLimited(45009, "api freq out of limit", path="test")
        await release.wait()
        return {"errcode": 0}

    sending = asyncio.create_task(box.run(
        tenant="acme", key="i2", kind="welcome", payload={}, call=flaky,
        deadline=utcnow() + timedelta(seconds=15), until_deadline=True))
    for _ in range(1000):  # the first failure recorded: the inline backoff has begun
        async with db.read() as s:
            found = await outbox_repo.get_by_key(s, tenant="acme", key="i2")
        if found is not None and found.attempts == 1:
            break
        await asyncio.sleep(0.002)
    item = await row(db, "i2")
    assert (item.status, item.attempts, item.last_error) == (
        "sending", 1, "WeComRateLimited: errcode=45009")
    assert item.lease_owner and item.lease_until is not None
    assert utcnow() < item.lease_until <= utcnow() + timedelta(seconds=outbox.LEASE_S)
    [registered] = first_try
    assert (registered.status, registered.attempts) == ("sending", 0)
    assert registered.lease_owner == item.lease_owner and registered.lease_until is not None
    assert registered.lease_until <= utcnow() + timedelta(seconds=outbox.LEASE_S)
    release.set()
    done = await sending
    assert (done.status, done.result) == (CallStatus.DONE, {"errcode": 0})  # WeCom's answer
    again = Calls()  # the key's row owns the call: a second run does nothing
    assert (await box.run(tenant="acme", key="i2", kind="welcome", payload={},
                          call=again)).status is CallStatus.DUPLICATE
    assert again.sent == [] and not again.entered.is_set()


async def test_a_deadline_reached_at_the_first_attempt_is_already_too_late(
        db: Database, clock: Clock) -> None:
    clock.fixed = utcnow()
    calls = Calls()
    outcome = await Outbox(db).run(tenant="acme", key="w5", kind="welcome", payload={},
                                   call=calls, deadline=clock.fixed, until_deadline=True)
    assert (outcome.status, outcome.error) == (CallStatus.EXPIRED,
                                               "deadline passed before the first attempt")
    assert not calls.entered.is_set()


async def test_at_start_on_sqlite_a_dead_process_calls_are_retried_at_once(
        db: Database, db_url: str) -> None:
    """SQLite has one process: at start every row left "sending" (under any lease, however
    long) was a dead process's call in flight, and is sent again at once. PostgreSQL's
    processes may be alive: their rows wait for their leases to run out."""
    now = utcnow()
    async with db.write() as s:
        await outbox_repo.insert_if_new(
            s, tenant="acme", key="w1", kind="welcome", payload=json.dumps({"n": 1}),
            due_at=now, deadline_at=now + timedelta(seconds=15), lease_owner="1:dead",
            lease_until=now + timedelta(hours=1))
    calls = Calls()
    taken = await Outbox(db, retry=NOW_RETRY).recover({"welcome": calls})
    item = await row(db, "w1")
    if db_url.startswith("sqlite"):
        assert (taken, calls.sent, item.status, item.attempts) == (1, [{"n": 1}], "done", 1)
    else:
        assert (taken, calls.sent, item.status, item.lease_owner) == (0, [], "sending",
                                                                      "1:dead")
