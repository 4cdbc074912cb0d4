"""自动通过好友 over HTTP against the sandbox: a channel code's skip_verify (WeCom adds the
customer without the guide's confirmation) and its window of the tenant's day
(auto_accept_hours). The code is made with what the window wants at that moment; the job
tells WeCom at the window's edges (update_contact_way for a QR code, update_link for a
获客助手 link) only when that differs from what it was last told; a refusal stays in the
outbox and is asked again by the next pass; bad windows are refused with nothing stored; the
console and `guidebot channel create` set the same options. The clock is the test's
(Asia/Shanghai, UTC+8), never the real time of day."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guidebot import jobs
from guidebot.cli import main
from guidebot.db.repo import outbox as outbox_repo
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known, write_config

NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
WAY = "externalcontact/update_contact_way"
LINK = "externalcontact/customer_acquisition/update_link"


def _local(hours: float) -> datetime:
    """The test day's Shanghai time `hours` after its midnight (past 24: the next day)."""
    return NOON - timedelta(hours=12) + timedelta(hours=hours)


def _at(stack: Stack, when: datetime) -> None:
    stack.runtime.services.channel_auto_accept.clock = lambda: when


async def _refresh(stack: Stack) -> int:
    return await stack.runtime.services.channel_auto_accept.refresh_all("acme")


async def _create(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    status, code = await stack.admin("/channels", method="POST", json=body)
    assert status == 201, code
    return code


async def _listed(stack: Stack, code_id: int) -> dict[str, Any]:
    _, listed = await stack.admin("/channels")
    return next(c for c in listed["channels"] if c["id"] == code_id)


def _way_flag(stack: Stack, config_id: str) -> bool:
    return bool(stack.sandbox.tenant("acme").contact_ways[config_id].body["skip_verify"])


def _flags(stack: Stack, path: str) -> list[bool]:
    return [c["body"]["skip_verify"] for c in stack.calls(path) if c["errcode"] == 0]


async def test_a_qr_code_accepts_by_itself_only_inside_its_hours(stack: Stack) -> None:
    await known(stack, guides=("lina",))
    _at(stack, NOON)
    code = await _create(stack, {"guide": "lina", "campaign": "门店",
                                 "auto_accept_hours": "09:00-21:00"})
    [made] = stack.calls("externalcontact/add_contact_way")
    assert made["body"]["skip_verify"] is True  # noon: inside the window
    assert (code["skip_verify"], code["auto_accept_hours"], code["skip_verify_now"]) == (
        True, "09:00-21:00", True)
    config = code["config_id"]
    assert await _refresh(stack) == 0
    _at(stack, _local(20 + 59 / 60))
    assert await _refresh(stack) == 0
    assert stack.calls(WAY) == []

    _at(stack, _local(21))  # the window's end: the guide accepts from now on
    await jobs.run_channel_auto_accept(stack.runtime.services, "acme")
    [asked] = stack.calls(WAY)
    assert asked["body"] == {"config_id": config, "user": ["lina"], "state": code["state"],
                             "remark": "门店", "skip_verify": False}
    assert _way_flag(stack, config) is False
    listed = await _listed(stack, code["id"])
    assert (listed["skip_verify"], listed["skip_verify_now"]) == (True, False)
    assert await _refresh(stack) == 0  # told already: nothing asked again
    _at(stack, _local(24 + 8 + 59 / 60))  # 08:59 the next day
    assert await _refresh(stack) == 0
    assert len(stack.calls(WAY)) == 1

    _at(stack, _local(24 + 9))  # 09:00: automatic again
    assert await _refresh(stack) == 1
    assert _flags(stack, WAY) == [False, True]
    assert _way_flag(stack, config) is True
    assert (await _listed(stack, code["id"]))["skip_verify_now"] is True

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/channels/{code['id']}")
        assert status == 200
        shown = re.search(r'data-col="auto-accept">(.*?)</dd>', html, re.S)
        assert shown and "09:00–21:00 自动通过" in shown.group(1), html
        assert 'data-now="on"' in shown.group(1) and "当前：自动通过" in shown.group(1)
    finally:
        await console.close()


async def test_a_link_window_past_midnight_starts_outside_and_turns_on_at_night(
        stack: Stack) -> None:
    await known(stack, guides=("lina", "wang"))
    _at(stack, NOON)
    link = await _create(stack, {"guides": ["lina", "wang"], "kind": "link",
                                 "campaign": "抖音", "auto_accept_hours": "21:00-09:00"})
    [made] = stack.calls("externalcontact/customer_acquisition/create_link")
    assert made["body"]["skip_verify"] is False  # noon: outside 21:00–09:00
    assert link["skip_verify_now"] is False
    held = stack.sandbox.tenant("acme").acquisition_links[link["config_id"]]
    assert held.skip_verify is False

    _at(stack, _local(23.5))
    assert await _refresh(stack) == 1
    [asked] = stack.calls(LINK)
    assert asked["body"] == {"link_id": link["config_id"], "link_name": "抖音",
                             "range": {"user_list": ["lina", "wang"]}, "skip_verify": True}
    assert held.skip_verify is True
    _at(stack, _local(24 + 3))  # 03:00 the next day: still inside
    assert await _refresh(stack) == 0
    _at(stack, _local(24 + 9))
    assert await _refresh(stack) == 1
    assert _flags(stack, LINK) == [True, False] and held.skip_verify is False


async def test_a_refusal_is_kept_in_the_outbox_and_asked_again(stack: Stack) -> None:
    await known(stack, guides=("lina",))
    _at(stack, NOON)
    code = await _create(stack, {"guide": "lina", "auto_accept_hours": "09:00-21:00"})
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": WAY, "errcode": 40058, "times": 1}) as answer:
        assert answer.status == 200
    _at(stack, _local(22))
    assert await _refresh(stack) == 1
    assert [c["errcode"] for c in stack.calls(WAY)] == [40058]
    assert _way_flag(stack, code["config_id"]) is True  # WeCom holds what it held
    services = stack.runtime.services
    async with services.db.read() as s:
        refused = await outbox_repo.list_items(s, tenant="acme", kind="channel_verify")
    [row] = refused
    assert row.status == "dead" and "40058" in row.last_error  # recorded
    assert (await _listed(stack, code["id"]))["skip_verify_now"] is True

    assert await _refresh(stack) == 1  # the next pass asks again
    assert [c["errcode"] for c in stack.calls(WAY)] == [40058, 0]
    assert _way_flag(stack, code["config_id"]) is False
    assert (await _listed(stack, code["id"]))["skip_verify_now"] is False
    assert await _refresh(stack) == 0
    async with services.db.read() as s:
        rows = await outbox_repo.list_items(s, tenant="acme", kind="channel_verify")
    assert sorted(r.status for r in rows) == ["dead", "done"]


async def test_bad_windows_are_refused_and_edits_tell_wecom_what_changed(
        stack: Stack) -> None:
    await known(stack, guides=("lina",))
    _at(stack, NOON)
    refused = [
        ({"auto_accept_hours": "9-21"}, "must be HH:MM-HH:MM"),
        ({"auto_accept_hours": "24:00-09:00"}, "must be HH:MM-HH:MM"),
        ({"auto_accept_hours": "09:00-09:00"}, "must not start where it ends"),
        ({"skip_verify": False, "auto_accept_hours": "09:00-21:00"},
         "is for skip_verify true"),
    ]
    for extra, said in refused:
        status, answer = await stack.admin("/channels", method="POST",
                                           json={"guide": "lina", **extra})
        assert status == 400 and answer["field"] == "auto_accept_hours", (extra, answer)
        assert said in answer["reason"], (extra, answer)
    assert stack.calls("externalcontact/add_contact_way") == []
    _, listed = await stack.admin("/channels")
    assert listed["channels"] == []

    code = await _create(stack, {"guide": "lina", "skip_verify": False})
    [made] = stack.calls("externalcontact/add_contact_way")
    assert made["body"]["skip_verify"] is False
    assert (code["skip_verify"], code["auto_accept_hours"], code["skip_verify_now"]) == (
        False, None, False)
    assert await _refresh(stack) == 0
    path = f"/channels/{code['id']}"

    # a night window set at noon: WeCom holds false already, nothing is asked
    status, night = await stack.admin(path, method="PATCH", json={
        "skip_verify": True, "auto_accept_hours": "22:00-06:00"})
    assert status == 200, night
    assert (night["skip_verify"], night["auto_accept_hours"], night["skip_verify_now"]) == (
        True, "22:00-06:00", False)
    assert stack.calls(WAY) == []
    status, all_day = await stack.admin(path, method="PATCH", json={"auto_accept_hours": ""})
    assert status == 200 and all_day["skip_verify_now"] is True, all_day
    assert _flags(stack, WAY) == [True]
    assert _way_flag(stack, code["config_id"]) is True

    status, answer = await stack.admin(path, method="PATCH", json={
        "skip_verify": False, "auto_accept_hours": "1:00-2:00"})
    assert status == 400 and answer["field"] == "auto_accept_hours", answer
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": WAY, "errcode": 40058, "times": 1}) as resp:
        assert resp.status == 200
    status, answer = await stack.admin(path, method="PATCH", json={"skip_verify": False})
    assert status == 502, answer  # WeCom refused: nothing changed
    kept = await _listed(stack, code["id"])
    assert (kept["skip_verify"], kept["skip_verify_now"]) == (True, True)
    status, off = await stack.admin(path, method="PATCH", json={"skip_verify": False})
    assert status == 200 and off["skip_verify_now"] is False, off
    assert _flags(stack, WAY) == [True, False]
    assert _way_flag(stack, code["config_id"]) is False


async def test_the_console_sets_the_hours_and_the_cli_the_flags(
        stack: Stack, tmp_path: Path, db_url: str) -> None:
    await known(stack, guides=("lina", "wang"))
    _at(stack, _local(23))
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/channels")
        assert status == 200 and "自动通过好友" in html and "自动通过时段" in html
        form: Any = [("_csrf", csrf_in(html)), ("kind", "qr"), ("guide", "lina"),
                     ("store", ""), ("campaign", "夜间"), ("welcome", ""),
                     ("daily_limit", "0"), ("accept_from", "09:00"), ("accept_to", "21:00")]
        status, refused, _ = await console.post("/console/acme/channels", form)
        assert status == 400 and "请勾选「客户添加时无需导购确认」" in refused, refused
        status, refused, _ = await console.post(
            "/console/acme/channels", [*form[:-1], ("skip_verify", "1")])
        assert status == 400 and "自动通过时段请填写开始和结束时间" in refused, refused
        status, _, resp = await console.post("/console/acme/channels",
                                             [*form, ("skip_verify", "1")])
        assert status == 303, status
        [made] = stack.calls("externalcontact/add_contact_way")
        assert made["body"]["skip_verify"] is False  # 23:00: outside the hours
        _, listed = await stack.admin("/channels")
        [code] = listed["channels"]
        assert (code["auto_accept_hours"], code["skip_verify_now"]) == ("09:00-21:00", False)
        page = f"/console/acme/channels/{code['id']}"
        status, html, _ = await console.get(page)
        assert 'name="accept_from" type="time" value="09:00"' in html
        assert "当前：需导购确认" in html
        edit: Any = [("_csrf", csrf_in(html)), ("guide", "lina"), ("daily_limit", "0"),
                     ("store", ""), ("campaign", "夜间"), ("welcome", ""),
                     ("accept_from", ""), ("accept_to", "")]
        status, _, resp = await console.post(page, edit)  # unticked, no hours
        assert status == 303, status
        status, html, _ = await console.get(resp.headers["Location"])
        assert "每次添加都需导购确认" in html
        assert stack.calls(WAY) == []  # WeCom holds false already
    finally:
        await console.close()

    folder = tmp_path / "cli"
    folder.mkdir()
    config = write_config(folder, db_url,  # the same database and sandbox as the stack
                          acme=f'api_base = "{stack.sandbox_url}/cgi-bin/"')
    args = ["--config", str(config), "channel", "create", "--tenant", "acme", "--guide", "wang"]
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert await asyncio.to_thread(main, [*args, "--auto-accept-hours", "9:00"]) == 2
    assert "auto_accept_hours" in err.getvalue()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert await asyncio.to_thread(main, [*args, "--no-skip-verify"]) == 0
    printed = json.loads(out.getvalue())
    assert (printed["skip_verify"], printed["skip_verify_now"]) == (False, False)
    assert stack.calls("externalcontact/add_contact_way")[-1]["body"]["skip_verify"] is False
