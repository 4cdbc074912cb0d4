"""Hot reload of content_library over HTTP: an edited SOP or message file is used for the next
step without a restart, an invalid edit leaves the library in force and says what is wrong,
a disabled SOP stops, and nothing is ever sent twice."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot import jobs
from guidebot.db.repo import sop_plan
from tests.support.stack import ROOT, Stack, known, start_stack

SOP = """
id = "reload"
title = "热更新测试"
enabled = {enabled}
quiet_hours = "00:00-00:00"  # none: the test runs at any time of day

[trigger]
on = "manual"

[[steps]]
at = "+1m"
channel = "guide_task"
message = "drop_double12_warmup"
{later}
"""
V1 = """
[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_care_replenish"
"""
V2 = """
[[steps]]
at = "+2d"
channel = "guide_task"
message = "sop_winback_coupon"

[[steps]]
at = "+3d"
channel = "guide_task"
message = "sop_care_replenish"

[[steps]]
at = "+4d"
channel = "guide_task"
message = "sop_care_tips"
"""
CUSTOMERS = ["wmRELOAD001", "wmRELOAD002", "wmRELOAD003"]


@pytest.fixture
async def reload_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", library)
    (library / "sops" / "reload.toml").write_text(SOP.format(enabled="true", later=V1),
                                                 encoding="utf-8")
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield stack, library
    await stack.http.close()


async def _reload(stack: Stack) -> None:
    """The reload job, twice: an edit is applied once the files are the same on two looks."""
    await jobs.run_library_reload(stack.runtime.services)
    await jobs.run_library_reload(stack.runtime.services)


async def _sop(stack: Stack) -> tuple[dict[str, Any], list[Any]]:
    status, body = await stack.admin("/sops")
    assert status == 200, body
    return next(s for s in body["sops"] if s["id"] == "reload"), body["library_errors"]


async def _enroll_customers(stack: Stack) -> None:
    """CUSTOMERS, lina's in WeCom, enrolled in the reload SOP."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/seed", json={
            "follows": [{"userid": "lina", "external_userid": c} for c in CUSTOMERS]}) as resp:
        assert resp.status == 200
    await known(stack, customers=tuple(CUSTOMERS), guides=("lina",))
    for customer in CUSTOMERS:
        status, body = await stack.admin("/sops/reload/enroll", method="POST",
                                         json={"external_userid": customer, "guide": "lina"})
        assert status == 201, body


def _received(stack: Stack) -> dict[str, list[str]]:
    """Each customer's 群发 texts, in order (however the steps were batched into tasks)."""
    out: dict[str, list[str]] = {c: [] for c in CUSTOMERS}
    for call in stack.calls("externalcontact/add_msg_template"):
        for customer in call["body"]["external_userid"]:
            out[customer].append(call["body"]["text"]["content"])
    return out


def _all_got(stack: Stack, *markers: str) -> bool:
    """Every customer got exactly these texts (each marked by a fragment), in order."""
    return all(len(texts) == len(markers)
               and all(m in t for m, t in zip(markers, texts, strict=True))
               for texts in _received(stack).values())


async def test_edits_apply_to_the_next_step_and_a_bad_edit_changes_nothing(
        reload_stack: tuple[Stack, Path], caplog: pytest.LogCaptureFixture) -> None:
    stack, library = reload_stack
    await _enroll_customers(stack)
    services = stack.runtime.services
    async with services.db.read() as s:
        enrollment = await sop_plan.find_enrollment(s, tenant="acme", sop_id="reload",
                                                    external_userid=CUSTOMERS[0], guide="lina")
    assert enrollment is not None
    trigger: datetime = enrollment.trigger_at
    sop = services.sop

    async def tick(after: timedelta) -> None:
        sop.clock = lambda: trigger + after
        await sop.tick("acme")

    await tick(timedelta(minutes=2))
    assert _all_got(stack, "双12")
    assert (await _sop(stack))[0]["version"] == 1

    # HQ edits the SOP (step 1 moves to day 2, a step is added) and a message it uses
    (library / "sops" / "reload.toml").write_text(SOP.format(enabled="true", later=V2),
                                                 encoding="utf-8")
    coupon = library / "messages" / "sop_winback_coupon.toml"
    coupon.write_text(coupon.read_text(encoding="utf-8").replace("回归礼：", "回归礼（热更新）："),
                      encoding="utf-8")
    await jobs.run_library_reload(services)
    assert (await _sop(stack))[0]["version"] == 1  # seen once: it may still be being written
    await jobs.run_library_reload(services)
    sop_view, errors = await _sop(stack)
    assert (sop_view["version"], [s["at"] for s in sop_view["steps"]], errors) == (
        2, ["+1m", "+2d", "+3d", "+4d"], [])
    await tick(timedelta(days=1, minutes=2))
    assert _all_got(stack, "双12")  # the old day-1 step is not sent: it moved to day 2
    await tick(timedelta(days=2, minutes=2))
    assert _all_got(stack, "双12", "回归礼（热更新）")

    # an invalid edit: logged with file:line, shown in the API, the library in force stays
    (library / "sops" / "reload.toml").write_text(
        SOP.format(enabled="true", later=V2).replace('title = "热更新测试"',
                                                     'title = "热更新测试"\ncolour = "red"'),
        encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="guidebot.content.reload"):
        await _reload(stack)
    assert any("sops/reload.toml:4: unknown key 'colour'" in r.getMessage()
               for r in caplog.records)
    sop_view, errors = await _sop(stack)
    assert sop_view["version"] == 2
    assert errors == [{"file": "sops/reload.toml", "line": 4,
                       "message": "unknown key 'colour'"}]
    assert all("好久不见" not in r.getMessage() for r in caplog.records)
    await tick(timedelta(days=3, minutes=2))  # step 2 of version 2 still goes out
    assert _all_got(stack, "双12", "回归礼（热更新）", "回购")

    # HQ fixes the file by disabling the SOP: the error clears, the last step never comes
    (library / "sops" / "reload.toml").write_text(SOP.format(enabled="false", later=V2),
                                                 encoding="utf-8")
    await _reload(stack)
    sop_view, errors = await _sop(stack)
    assert (sop_view["version"], sop_view["enabled"], errors) == (3, False, [])
    await tick(timedelta(days=5))
    assert _all_got(stack, "双12", "回归礼（热更新）", "回购")  # each step once, none twice
    sop_view, _ = await _sop(stack)
    assert sop_view["enrollments"] == {"stopped": 3}


async def test_a_removed_or_emptied_library_is_rejected(reload_stack: tuple[Stack, Path]) -> None:
    stack, library = reload_stack
    shutil.rmtree(library)
    library.mkdir()  # e.g. a deploy that has not copied the files yet
    await _reload(stack)
    sop_view, errors = await _sop(stack)
    assert sop_view["enabled"] is True and sop_view["version"] == 1
    assert [e["message"] for e in errors] == [
        "no library files found (messages/, sops/, drops/, tags.toml)"]


async def test_a_process_that_has_not_reloaded_yet_records_no_older_version(
        tmp_path: Path, db_url: str) -> None:
    from guidebot.db.engine import Database
    from guidebot.db.migrate import upgrade_async
    from guidebot.services import build_services
    from guidebot.settings import load_settings
    from tests.support.stack import write_config

    library = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", library)
    sop_file = library / "sops" / "reload.toml"
    sop_file.write_text(SOP.format(enabled="true", later=V1), encoding="utf-8")
    settings = load_settings(write_config(tmp_path, db_url, library))
    await upgrade_async(db_url)
    one, two = (build_services(settings, Database(db_url)) for _ in range(2))  # both load v1
    try:
        assert (await one.sop.ready("acme"))["reload"].version == 1
        sop_file.write_text(SOP.format(enabled="true", later=V2), encoding="utf-8")
        for _ in range(2):
            await jobs.run_library_reload(one)
        # the other process has not looked at the files since: it must not record v1 again
        current = (await two.sop.ready("acme"))["reload"]
        assert (current.version, len(current.spec.steps)) == (2, 4)
        for _ in range(2):
            await jobs.run_library_reload(two)
        assert (await two.sop.ready("acme"))["reload"].version == 2  # same content: no v3
    finally:
        for services in (one, two):
            await services.close()
            await services.db.dispose()


async def test_removing_a_message_still_to_be_sent_waits_until_it_is_sent(
        reload_stack: tuple[Stack, Path]) -> None:
    stack, library = reload_stack
    await _enroll_customers(stack)
    services, sop = stack.runtime.services, stack.runtime.services.sop
    async with services.db.read() as s:
        enrollment = await sop_plan.find_enrollment(s, tenant="acme", sop_id="reload",
                                                    external_userid=CUSTOMERS[0], guide="lina")
    assert enrollment is not None
    due = enrollment.trigger_at + timedelta(minutes=2)
    sop.clock = lambda: due
    await sop.plan("acme")  # step 1's 群发 task is made, not sent yet

    # HQ moves step 1 to another message and deletes the old one (and the drop using it)
    (library / "sops" / "reload.toml").write_text(
        SOP.format(enabled="true", later=V1).replace("drop_double12_warmup", "sop_care_tips"),
        encoding="utf-8")
    (library / "drops" / "double12_warmup.toml").unlink()
    (library / "messages" / "drop_double12_warmup.toml").unlink()
    await _reload(stack)
    sop_view, errors = await _sop(stack)
    assert sop_view["version"] == 1  # the library in force stays
    assert [(e["file"], e["line"]) for e in errors] == [("messages/drop_double12_warmup.toml",
                                                         None)]
    assert "still to be sent (1 task(s) not sent yet, 0 step(s) planned)" in errors[0]["message"]
    assert "drop_double12_warmup" in services.library.messages

    await sop.tick("acme")  # the task goes out with the message it was made with
    assert _all_got(stack, "双12")
    library_now = services.library
    assert library_now.rejected is not None
    library_now.rejected = replace(library_now.rejected,  # as if a minute had passed
                                   at=library_now.rejected.at - timedelta(minutes=2))
    await _reload(stack)
    sop_view, errors = await _sop(stack)
    assert errors == [] and sop_view["version"] == 2
    assert "drop_double12_warmup" not in services.library.messages
