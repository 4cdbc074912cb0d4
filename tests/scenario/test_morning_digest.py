"""导购早报 over HTTP against the sandbox: at `[tenants.<id>.alerts] morning_digest` (the
tenant's time zone) each active guide with something to hear gets one app message: 群发
tasks waiting for their confirmation, reminders of yesterday and today, yesterday's adds,
deletions by customers, credited orders and GMV, and the month's commission. A guide with
nothing, or who left, gets nothing; a guide hears one per day whatever runs the job (twice,
another process); the next day sends again; a process starting after the time still sends
that day's, never a past day's; off unless configured.

Every clock is set explicitly (the digest's, the SOP engine's, the commerce intake's, the
adds' and deletions' callback times, the orders' paid_at): nothing depends on the real time
of day."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guidebot import jobs
from guidebot.app import RUNTIME, create_app
from guidebot.db.models import OutboxItem
from guidebot.services import Services
from guidebot.stats.definitions import yuan
from tests.support.commerce import paid, post_settled
from tests.support.stack import FAST_BACKOFF, ROOT, Stack, library_copy, start_stack

TEXTS = tomllib.loads((ROOT / "content_library/chat/texts.toml").read_text(encoding="utf-8"))
ONE_MORE = TEXTS["digest_titles_more"].format(n=1)
ON = '\n[tenants.acme.alerts]\nmorning_digest = "09:00"\n'
SHANGHAI = timedelta(hours=8)  # Asia/Shanghai, no DST


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in Shanghai on 2026-11-<day>, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - SHANGHAI


DAY = 20  # the digest's day; "yesterday" is the 19th
TITLES = {"digest_a": "早报测试一", "digest_b": "早报测试二", "digest_c": "早报测试三",
          "digest_d": "早报测试四"}


def _sop(sop_id: str, title: str, *, reminder: bool) -> str:
    text = f'''id = "{sop_id}"
title = "{title}"
enabled = true

[trigger]
on = "manual"

[[steps]]
at = "+1m"
channel = "guide_task"
message = "drop_double12_warmup"
'''
    if reminder:
        text += '\n[[steps]]\nat = "+2m"\nchannel = "reminder"\nmessage = "sop_care_thanks"\n'
    return text


async def _stack(aiohttp_server: Any, tmp_path: Path, db_url: str, extra: str = ON) -> Stack:
    library = library_copy(tmp_path, {f"sops/{sop_id}.toml": _sop(sop_id, title,
                                                                   reminder=sop_id == "digest_a")
                                      for sop_id, title in TITLES.items()})
    return await start_stack(aiohttp_server, tmp_path, db_url, library=library,
                             config_extra=extra)


@pytest.fixture
async def digest_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    s = await _stack(aiohttp_server, tmp_path, db_url)
    yield s
    await s.http.close()


async def _add(stack: Stack, guide: str, name: str, at: datetime) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name,
                                                     create_time=int(at.timestamp()))
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _deleted_by_customer(stack: Stack, guide: str, customer: str, at: datetime) -> None:
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_follow_user", "UserID": guide,
        "ExternalUserID": customer, "CreateTime": int(at.timestamp())})
    assert answer["delivery"]["status"] == 200, answer["delivery"]
    await stack.runtime.drain()


async def _leave(stack: Stack, guide: str) -> None:
    """The guide leaves: the address book says so (status 5), called back as change_contact."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/directory", json={
            "departments": [{"id": 1, "name": "acme", "parentid": 0}],
            "members": [{"userid": guide, "name": guide, "department": [1], "status": 5}],
            "deliver": True}) as resp:
        assert resp.status == 200, await resp.text()
    await stack.runtime.drain()
    _, listed = await stack.admin("/guides")
    assert {g["userid"]: g["active"] for g in listed["guides"]}[guide] is False


def _digests(stack: Stack, guide: str | None = None) -> list[tuple[str, str]]:
    """(guide, text) of every digest the sandbox received, in order."""
    head = TEXTS["digest_header"].split("{")[0]
    return [(m["userid"], m["content"]["content"])
            for m in stack.sandbox.state("acme")["app_messages"]
            if m["msgtype"] == "text" and m["content"]["content"].startswith(head)
            and (guide is None or m["userid"] == guide)]


async def _rows(stack: Stack) -> list[tuple[str, str]]:
    async with stack.runtime.services.db.read() as s:
        stmt = select(OutboxItem).where(OutboxItem.kind == "morning_digest")
        return sorted((r.key, r.status) for r in (await s.execute(stmt)).scalars())


async def _run(services: Services, at: datetime) -> None:
    services.digest.clock = lambda: at
    await jobs.run_morning_digest(services, "acme")


async def _day(stack: Stack) -> dict[str, str]:
    """lina's, wangfang's and zhaolei's customers and tasks around the 19th (yesterday).
    lina: 4 群发 tasks waiting (4 SOPs) and a reminder made yesterday; adds at 00:30 and
    12:00 yesterday (counted), two the day before and one at 01:00 today (not); a deletion
    by a customer yesterday; an order of ¥26.05 paid yesterday evening. wangfang: a customer
    added the day before. zhaolei: an add yesterday, then leaves."""
    services = stack.runtime.services
    c = {"c5": await _add(stack, "lina", "许晴", local(17, 12)),
         "c3": await _add(stack, "lina", "王强", local(18, 12)),
         "c4": await _add(stack, "lina", "李雷", local(18, 12)),
         "w1": await _add(stack, "wangfang", "韩梅梅", local(18, 12)),
         "c1": await _add(stack, "lina", "张晓雨", local(19, 0, 30)),
         "z1": await _add(stack, "zhaolei", "周婷", local(19, 11)),
         "c2": await _add(stack, "lina", "郑佳怡", local(19, 12))}
    await _deleted_by_customer(stack, "lina", c["c5"], local(19, 15))
    services.sop.clock = lambda: local(19, 13)
    for sop_id, customer in zip(TITLES, ("c1", "c2", "c3", "c4"), strict=True):
        status, body = await stack.admin(f"/sops/{sop_id}/enroll", method="POST", json={
            "external_userid": c[customer], "guide": "lina"})
        assert status == 201, body
    for minute in (5, 6):  # the 群发 steps, then digest_a's reminder
        services.sop.clock = lambda minute=minute: local(19, 13, minute)
        await services.sop.tick("acme")
    _, tasks = await stack.admin("/tasks?guide=lina")
    assert sorted((t["kind"], t["status"]) for t in tasks["tasks"]
                  if t["kind"] in ("guide_task", "reminder")) == [
        ("guide_task", "sent")] * 4 + [("reminder", "sent")]
    services.commerce.clock = lambda: local(19, 20, 5)
    items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": 2605}]
    status, order = await post_settled(stack, paid("DG-1", customer=c["c2"], items=items,
                                                   paid_at=local(19, 20)))
    assert status == 200 and order["guide"] == "lina", order
    c["c6"] = await _add(stack, "lina", "李华", local(20, 1))  # today, not yesterday
    await _leave(stack, "zhaolei")
    return c


async def _commission(stack: Stack) -> str:
    _, body = await stack.admin("/commissions/statements?period=2026-11")
    [lina] = [r for r in body["statements"] if r["guide"] == "lina"]
    assert lina["net_fen"] > 0
    return yuan(lina["net_fen"])


def _waiting_line(text: str) -> list[str]:
    """The titles on the 待确认群发 line (checked to end in "……还有 1 个": four tasks from
    four SOPs, three named)."""
    prefix = TEXTS["digest_tasks"].format(count=4, titles="")
    [line] = [x for x in text.split("\n") if x.startswith(prefix)]
    assert line.endswith(ONE_MORE) and ONE_MORE == "……还有 1 个"
    return line[len(prefix):-len(ONE_MORE)].split("、")


async def test_a_guide_hears_their_day_once_and_a_guide_with_nothing_hears_nothing(
        digest_stack: Stack, aiohttp_server: Any) -> None:
    stack = digest_stack
    services = stack.runtime.services
    await _day(stack)
    commission = await _commission(stack)

    await _run(services, local(DAY, 8, 59))  # before the time: nothing yet
    assert _digests(stack) == [] and await _rows(stack) == []

    await _run(services, local(DAY, 9, 30))
    [(guide, text)] = _digests(stack)
    assert guide == "lina"
    lines = text.split("\n")
    titles = _waiting_line(text)
    assert len(titles) == 3 and set(titles) < set(TITLES.values())
    assert lines == [
        TEXTS["digest_header"].format(date="2026-11-20"),
        TEXTS["digest_tasks"].format(count=4, titles="、".join(titles)
                                     + ONE_MORE),
        TEXTS["digest_reminders"].format(count=1, customers=1),
        TEXTS["digest_added"].format(count=2),
        TEXTS["digest_deleted"].format(count=1),
        TEXTS["digest_orders"].format(count=1, amount="¥26.05"),
        TEXTS["digest_commission"].format(period="2026-11", net=commission),
        TEXTS["digest_footer"]]
    assert await _rows(stack) == [("digest:lina:2026-11-20", "done")]

    # the job again, and another process (a restart) the same day: nothing more
    await _run(services, local(DAY, 9, 31))
    second = create_app(stack.settings, start_jobs=False, backoff=FAST_BACKOFF)
    await aiohttp_server(second)
    await _run(second[RUNTIME].services, local(DAY, 18))
    assert len(_digests(stack)) == 1
    assert await _rows(stack) == [("digest:lina:2026-11-20", "done")]

    # the next day, both processes at once: one digest, with the 20th as "yesterday"
    await asyncio.gather(_run(services, local(DAY + 1, 9)),
                         _run(second[RUNTIME].services, local(DAY + 1, 9)))
    assert [g for g, _ in _digests(stack)] == ["lina", "lina"]
    _, text = _digests(stack)[-1]
    assert text.split("\n") == [
        TEXTS["digest_header"].format(date="2026-11-21"),
        TEXTS["digest_tasks"].format(count=4, titles="、".join(_waiting_line(text))
                                     + ONE_MORE),
        TEXTS["digest_added"].format(count=1),  # 01:00 on the 20th
        TEXTS["digest_commission"].format(period="2026-11", net=commission),
        TEXTS["digest_footer"]]
    assert await _rows(stack) == [("digest:lina:2026-11-20", "done"),
                                  ("digest:lina:2026-11-21", "done")]
    head = TEXTS["digest_header"].split("{")[0]
    sends = [c for c in stack.calls("message/send") if c["errcode"] == 0
             and c["body"].get("text", {}).get("content", "").startswith(head)]
    assert [c["body"]["touser"] for c in sends] == ["lina", "lina"]


async def test_a_late_start_sends_the_days_digest_but_never_a_past_days(
        digest_stack: Stack) -> None:
    """The 20th's digest was never sent (no process ran that day): a process running on the
    21st before 09:00 sends nothing, not the 20th's late nor the 21st's early; one starting
    at 15:00 sends the 21st's (yesterday being the 20th)."""
    stack = digest_stack
    services = stack.runtime.services
    await _add(stack, "wangfang", "李雷", local(19, 10))  # what the 20th's would have said
    await _add(stack, "wangfang", "韩梅梅", local(20, 10))
    await _run(services, local(21, 8))
    assert _digests(stack) == [] and await _rows(stack) == []
    await _run(services, local(21, 15))
    assert _digests(stack) == [("wangfang", "\n".join([
        TEXTS["digest_header"].format(date="2026-11-21"),
        TEXTS["digest_added"].format(count=1), TEXTS["digest_footer"]]))]
    assert await _rows(stack) == [("digest:wangfang:2026-11-21", "done")]


async def test_off_by_default_and_with_an_empty_time(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    for extra in ("", '\n[tenants.acme.alerts]\nmorning_digest = ""\n'):
        stack = await _stack(aiohttp_server, tmp_path / str(len(extra)), db_url, extra)
        try:
            assert stack.tenant().alerts.morning_digest is None
            await _add(stack, "lina", "张晓雨", local(19, 12))
            for at in (local(DAY, 9), local(DAY, 23, 59)):
                await _run(stack.runtime.services, at)
            assert _digests(stack) == [] and await _rows(stack) == []
        finally:
            await stack.http.close()


def test_the_months_commission_alone_is_no_digest() -> None:
    from guidebot.alerts.digest import GuideDay

    assert GuideDay(commission_fen=2605).empty()
    assert not GuideDay(commission_fen=2605, orders=1, gmv_fen=2605).empty()
    assert not GuideDay(waiting=1).empty() and GuideDay().empty()


async def test_the_digest_says_how_far_the_guide_is_from_the_months_targets(
        digest_stack: Stack) -> None:
    """With 业绩目标 set for the month, the digest adds one line: new customers and GMV
    against the targets, as the targets API counts them; a guide without targets has none."""
    from guidebot.stats.targets import progress
    from tests.support.console import upkeep

    stack = digest_stack
    services = stack.runtime.services
    await _day(stack)
    await upkeep(stack)
    status, month = await stack.admin("/targets/2026-11", method="PUT", json={
        "guides": {"lina": {"adds": 30, "gmv_fen": 500000}}})
    assert status == 200, month
    [lina] = month["guides"]
    assert lina["adds"]["actual"] >= 2 and lina["gmv_fen"]["actual"] > 0, lina
    await _run(services, local(DAY, 9, 30))
    [(_, text)] = _digests(stack, "lina")
    goals = TEXTS["digest_target_sep"].join([
        TEXTS["digest_target_adds"].format(progress=progress(lina["adds"]["actual"], 30)),
        TEXTS["digest_target_gmv"].format(progress=progress(lina["gmv_fen"]["actual"], 500000,
                                                            money=True))])
    lines = text.split("\n")
    assert lines[-2:] == [TEXTS["digest_target"].format(period="2026-11", goals=goals),
                          TEXTS["digest_footer"]], lines
    assert "%" in lines[-2] and "¥5,000.00" in lines[-2]


async def test_the_counts_are_exact_past_two_hundred_tasks(digest_stack: Stack) -> None:
    """A guide with 205 群发 tasks waiting (from 5 SOPs or drops) and 203 reminders made
    yesterday hears those numbers exactly, three titles named; tasks of another guide, a
    stopped one, a confirmed one and reminders of two days ago are not counted."""
    from guidebot.db.repo import sop_tasks as tasks_repo

    stack = digest_stack
    await _add(stack, "lina", "张晓雨", local(18, 12))
    async with stack.runtime.services.db.write() as s:
        for n in range(205):
            await tasks_repo.insert_task(s, now=local(19, 8), tenant="acme", key=f"w{n}",
                                         kind="guide_task", source=f"drop:src{n % 5}",
                                         guide="lina", message="m", recipients=1,
                                         status="sent")
        for n in range(203):
            await tasks_repo.insert_task(s, now=local(19, 10), tenant="acme", key=f"r{n}",
                                         kind="reminder", source="sop:digest_a", guide="lina",
                                         message="m", recipients=2, status="sent")
        for key, guide, kind, status, at, stopped in (
                ("x1", "wangfang", "guide_task", "sent", local(19, 8), None),
                ("x2", "lina", "guide_task", "sent", local(19, 8), local(19, 9)),
                ("x3", "lina", "guide_task", "confirmed", local(19, 8), None),
                ("x4", "lina", "reminder", "sent", local(18, 10), None),
                ("x5", "lina", "reminder", "failed", local(19, 10), None)):
            await tasks_repo.insert_task(s, now=at, tenant="acme", key=key, kind=kind,
                                         source="drop:other", guide=guide, message="m",
                                         recipients=1, status=status, stopped_at=stopped)
    await _run(stack.runtime.services, local(DAY, 9, 30))
    [(_, text)] = _digests(stack, "lina")
    lines = text.split("\n")
    assert lines[1] == TEXTS["digest_tasks"].format(
        count=205, titles="src0、src1、src2……还有 2 个"), lines  # src3 and src4
    assert lines[2] == TEXTS["digest_reminders"].format(count=203, customers=406), lines
