"""多人活码 with a daily limit over HTTP against the sandbox: a code of several guides is a
type 2 contact way; a guide who added the day's limit through it leaves the code
(update_contact_way), the backup guides serve once every guide has, everyone is back the
next day (the tenant's day) and a guide who left is taken out; runs at the same moment (in
one process or two, or the rotation and 自动通过好友's window edge) take turns per code, so
WeCom is asked each change once; bad combinations are refused with nothing stored; an
idempotency key stored by an older client still replays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import update

from guidebot import lanes
from guidebot.contacts.channel_rotation import ChannelRotation
from guidebot.db.engine import Database
from guidebot.db.models import Guide
from guidebot.db.repo import idempotency as idem_repo
from guidebot.idempotency import digest
from guidebot.outbox import Outbox
from guidebot.web.api.shapes import ChannelCreate
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known

T = TypeVar("T")
NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
CODE = {"guides": ["lina", "wang"], "backup_guides": ["zhou"], "daily_limit": 2,
        "store": "S01", "campaign": "门店活码"}


async def _code(stack: Stack, code_id: int) -> dict[str, Any]:
    _, listed = await stack.admin("/channels")
    return next(c for c in listed["channels"] if c["id"] == code_id)


async def _add_through(stack: Stack, config_id: str, at: datetime, name: str) -> None:
    await stack.sandbox.simulate_add_contact(
        "acme", config_id=config_id, name=name, create_time=int(at.timestamp()))
    await stack.runtime.drain()


def _updates(stack: Stack) -> list[list[str]]:
    return [c["body"]["user"] for c in stack.calls("externalcontact/update_contact_way")]


def _offered(stack: Stack, config_id: str) -> list[str]:
    return list(stack.sandbox.tenant("acme").contact_ways[config_id].body["user"])


async def test_a_guide_at_the_daily_limit_leaves_the_code_until_the_next_day(
        stack: Stack) -> None:
    rotation = stack.runtime.services.channel_rotation
    rotation.clock = lambda: NOON
    status, code = await stack.admin("/channels", method="POST", json=CODE)
    assert status == 201, code
    [made] = stack.calls("externalcontact/add_contact_way")
    assert (made["body"]["type"], made["body"]["user"]) == (2, ["lina", "wang"])
    assert (code["guide"], code["guides"], code["backup_guides"]) == (
        "lina", ["lina", "wang"], ["zhou"])
    assert (code["daily_limit"], code["serving"]) == (2, ["lina", "wang"])
    config = code["config_id"]

    for i in range(2):  # the sandbox gives an add to the first member offered: lina
        await _add_through(stack, config, NOON + timedelta(minutes=i), f"客户{i}")
    assert _updates(stack) == [["wang"]]
    assert _offered(stack, config) == ["wang"]
    assert (await _code(stack, code["id"]))["serving"] == ["wang"]
    for i in range(2, 4):
        await _add_through(stack, config, NOON + timedelta(minutes=i), f"客户{i}")
    assert _updates(stack) == [["wang"], ["zhou"]]  # both full: the backup serves
    await _add_through(stack, config, NOON + timedelta(minutes=5), "客户5")
    assert _updates(stack) == [["wang"], ["zhou"]]  # a backup guide has no limit
    listed = await _code(stack, code["id"])
    assert (listed["adds"], listed["serving"]) == (5, ["zhou"])
    _, guides = await stack.admin("/guides")
    stores = {g["userid"]: g["store"] for g in guides["guides"]}
    assert (stores["lina"], stores["wang"]) == ("S01", "S01")

    assert await rotation.refresh_all("acme") == 0  # the same day: nothing to change
    rotation.clock = lambda: NOON + timedelta(hours=12)  # 00:00 next day in Shanghai
    assert await rotation.refresh_all("acme") == 1
    assert _updates(stack)[-1] == ["lina", "wang"]
    assert _offered(stack, config) == ["lina", "wang"]
    assert await rotation.refresh_all("acme") == 0

    async with stack.runtime.services.db.write() as s:  # the address book: lina left
        await s.execute(update(Guide).where(Guide.userid == "lina").values(active=False))
    assert await rotation.refresh_all("acme") == 1
    assert _offered(stack, config) == ["wang"]


async def _over_the_limit_untold(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    """A code whose first guide added the day's limit while the rotation's clock was on
    another day (so nothing was asked yet); the clock is then back on the adds' day."""
    rotation = stack.runtime.services.channel_rotation
    rotation.clock = lambda: NOON + timedelta(days=1)
    status, code = await stack.admin("/channels", method="POST", json=body)
    assert status == 201, code
    for i in range(2):
        await _add_through(stack, code["config_id"], NOON + timedelta(minutes=i), f"客户{i}")
    assert _updates(stack) == [] and (await _code(stack, code["id"]))["adds"] == 2
    rotation.clock = lambda: NOON
    return code


async def _as_job(work: Awaitable[T]) -> T:
    """`work` as the scheduler's jobs run (its SQLite statements off the loop, so it waits
    on the database as another process would); gathered, each runs in a task of its own."""
    lanes.run_later()
    return await work


async def test_runs_at_the_same_moment_ask_wecom_once(stack: Stack) -> None:
    services = stack.runtime.services
    code = await _over_the_limit_untold(stack, CODE)
    other: Database | None = None
    runs = [services.channel_rotation] * 4
    if not services.db.is_sqlite:  # a second process: its own engine and outbox (SQLite has
        other = Database(services.db.url)  # one writer process: there the four run in one)
        second = ChannelRotation(services.settings, other, Outbox(other),
                                 lambda tenant: services.clients[tenant], clock=lambda: NOON)
        runs = [services.channel_rotation, second] * 2
    try:
        changed = await asyncio.gather(*(_as_job(run.recheck("acme", code["id"]))
                                         for run in runs))
    finally:
        if other is not None:
            await other.dispose()
    assert sorted(changed) == [False, False, False, True]
    assert _updates(stack) == [["wang"]]
    assert _offered(stack, code["config_id"]) == ["wang"]


async def test_the_rotation_and_a_window_edge_at_once_leave_wecom_both_changes(
        stack: Stack) -> None:
    services = stack.runtime.services
    services.channel_auto_accept.clock = lambda: NOON - timedelta(hours=1)  # 11:00: inside
    code = await _over_the_limit_untold(stack, {**CODE, "auto_accept_hours": "09:00-12:00"})
    services.channel_auto_accept.clock = lambda: NOON  # 12:00: the window has just ended
    assert (await _code(stack, code["id"]))["skip_verify_now"] is True
    rotated, edged = await asyncio.gather(
        _as_job(services.channel_rotation.refresh_all("acme")),
        _as_job(services.channel_auto_accept.refresh_all("acme")))
    assert (rotated, edged) == (1, 1)
    sent = [c["body"] for c in stack.calls("externalcontact/update_contact_way")]
    assert len(sent) == 2  # one each, the later with the earlier's change too
    assert (sent[-1]["user"], sent[-1]["skip_verify"]) == (["wang"], False)
    way = stack.sandbox.tenant("acme").contact_ways[code["config_id"]].body
    assert (way["user"], way["skip_verify"]) == (["wang"], False)
    listed = await _code(stack, code["id"])
    assert (listed["serving"], listed["skip_verify_now"]) == (["wang"], False)


async def test_bad_combinations_are_refused_and_nothing_is_stored(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang", "zhou"))
    refused = [
        ({**CODE, "backup_guides": []}, "backup_guides", "a daily_limit needs them"),
        ({**CODE, "daily_limit": 0}, "backup_guides", "only with a daily_limit"),
        ({**CODE, "kind": "link"}, "daily_limit", "is for QR codes"),
        ({**CODE, "guide": "lina"}, "guides", "give guide or guides"),
        ({"store": "S01"}, "guides", "give guide or guides"),
        ({**CODE, "backup_guides": ["wang"]}, "guides", "must not repeat"),
        ({**CODE, "guides": ["lina", "lina"]}, "guides", "must not repeat"),
        ({**CODE, "daily_limit": -1}, "daily_limit", "greater than or equal to 0"),
    ]
    for body, field, said in refused:
        status, answer = await stack.admin("/channels", method="POST", json=body)
        assert status == 400 and answer["field"] == field, (body, answer)
        assert said in answer["reason"], (body, answer)
    assert stack.calls("externalcontact/add_contact_way") == []
    _, listed = await stack.admin("/channels")
    assert listed["channels"] == []
    status, link = await stack.admin("/channels", method="POST", json={
        "guides": ["lina", "wang"], "kind": "link"})  # several guides on a link: no limit
    assert status == 201, link
    [made] = stack.calls("externalcontact/customer_acquisition/create_link")
    assert made["body"]["range"]["user_list"] == ["lina", "wang"]
    status, single = await stack.admin("/channels", method="POST", json={"guide": "zhou"})
    assert status == 201 and single["guides"] == ["zhou"] and single["serving"] == ["zhou"]
    assert stack.calls("externalcontact/add_contact_way")[-1]["body"]["type"] == 1


async def test_a_key_stored_by_an_older_client_replays_its_result(stack: Stack) -> None:
    await known(stack, guides=("lina",))
    body = {"guide": "lina", "store": "S01", "key": "old-client-1"}
    stored = {"id": 99, "kind": "qr", "state": "gbold", "config_id": "old", "qr_code": "",
              "guide": "lina", "store": "S01", "campaign": None, "tags": [],
              "welcome_message": None, "created_at": None}
    older = ChannelCreate(**body)  # as a client before kind, the rotation and 自动通过好友
    async with stack.runtime.services.db.write() as s:
        await idem_repo.put(s, tenant="acme", scope="channels", key="old-client-1",
                            digest=digest(older, frozenset({"kind", "guides", "backup_guides",
                                                            "daily_limit", "skip_verify",
                                                            "auto_accept_hours"})),
                            result=json.dumps(stored, ensure_ascii=False))
    status, answer = await stack.admin("/channels", method="POST", json=body)
    assert status == 200 and answer == stored, answer
    status, answer = await stack.admin("/channels", method="POST",
                                       json={**body, "daily_limit": 3, "backup_guides": ["x"]})
    assert status == 409, answer  # the same key with another body
    assert stack.calls("externalcontact/add_contact_way") == []


async def test_the_console_makes_a_code_of_several_guides_with_a_limit(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang", "zhou"))
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/channels")
        assert status == 200 and "每人每日上限" in html and "备用导购" in html
        form: Any = [("_csrf", csrf_in(html)), ("kind", "qr"), ("guide", "lina"),
                     ("guide", "wang"), ("store", ""), ("campaign", "门店"), ("welcome", ""),
                     ("daily_limit", "3")]
        status, refused, _ = await console.post("/console/acme/channels", form)
        assert status == 400 and "请选择备用导购" in refused, refused
        status, _, resp = await console.post("/console/acme/channels",
                                             [*form, ("backup", "zhou")])
        assert status == 303, status
        status, html, _ = await console.get(resp.headers["Location"])
        assert "每人每日 3 位" in html and "（接待中）" not in html
    finally:
        await console.close()
    _, listed = await stack.admin("/channels")
    [code] = listed["channels"]
    assert (code["guides"], code["backup_guides"], code["daily_limit"]) == (
        ["lina", "wang"], ["zhou"], 3)
