"""Customer group members in the data centre, over HTTP against the sandbox: joins, leaves,
a customer in two groups of the same owner, a group handed to another owner and a dismissal
are counted by the statistics job per owner and day; the overview JSON, the console overview
and the guides leaderboard show them, and a backfill gives the same figures. Migration 0058
writes the changes of groups stored before it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.repo import stats as stats_repo
from guidebot.stats.daily import DailyStats
from tests.support.console import Console, upkeep
from tests.support.stack import Stack


async def _add(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _totals(stack: Stack) -> dict[str, Any]:
    status, body = await stack.admin("/metrics/overview")
    assert status == 200, body
    totals = body["totals"]
    days = body["days"]  # the days add up to the totals
    for name in ("group_joins", "group_leaves", "group_net"):
        assert sum(d[name] for d in days) == totals[name], name
    return {k: totals[k] for k in ("group_joins", "group_leaves", "group_net",
                                   "group_handed_in", "group_handed_out", "group_members")}


def _figures(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(
        r'data-figure="(group_joins|group_leaves|group_net|group_members)">(-?\d+)<', html)}


def _guide_row(html: str, guide: str) -> dict[str, int]:
    row = re.search(rf'data-guide="{guide}">.*?</tr>', html, re.S)
    assert row, html
    return {k: int(v) for k, v in re.findall(
        r'data-col="(groups|group_members|group_net)">(-?\d+)<', row.group(0))}


async def test_group_joins_leaves_and_handovers_in_the_data_centre(stack: Stack) -> None:
    c1, c2, c3 = [await _add(stack, "lina", n) for n in ("王芳", "李雷", "韩梅")]
    c4 = await _add(stack, "mia", "张伟")
    assert await upkeep(stack) > 0
    assert (await _totals(stack))["group_members"] == 0
    first = await stack.sandbox.create_group("acme", "lina", name="会员群", members=[c1, c2])
    second = await stack.sandbox.create_group("acme", "lina", name="福利群", members=[c1])
    chat_a, chat_b = str(first["chat_id"]), str(second["chat_id"])
    await stack.sandbox.join_group("acme", chat_a, [c3], join_scene=3)
    await stack.runtime.drain()
    assert await upkeep(stack) == 4  # four changes: c1 twice, c2, c3
    assert await _totals(stack) == {"group_joins": 3, "group_leaves": 0, "group_net": 3,
                                    "group_handed_in": 0, "group_handed_out": 0,
                                    "group_members": 3}  # c1 once for lina

    await stack.sandbox.quit_group("acme", chat_a, [c1])  # still in lina's 福利群
    await stack.runtime.drain()
    await stack.sandbox.quit_group("acme", chat_a, [c2], quit_scene=1)
    await stack.runtime.drain()
    await stack.sandbox.join_group("acme", chat_b, ["mia"])  # a corp member: not counted
    await stack.runtime.drain()
    await stack.sandbox.change_group("acme", chat_b, owner="mia")  # c1 goes with it
    await stack.runtime.drain()
    await stack.sandbox.join_group("acme", chat_b, [c4])
    await stack.runtime.drain()
    await upkeep(stack)
    assert await _totals(stack) == {"group_joins": 4, "group_leaves": 1, "group_net": 3,
                                    "group_handed_in": 1, "group_handed_out": 1,
                                    "group_members": 3}  # lina: c3; mia: c1, c4

    await stack.sandbox.dismiss_group("acme", chat_a)  # c3 leaves lina's last group
    await stack.runtime.drain()
    assert await upkeep(stack) == 1
    ran: list[str] = []
    db = stack.runtime.services.db
    for engine in (db.engine.sync_engine, *([db._inline()] if "sqlite" in db.url else [])):
        event.listen(engine, "before_cursor_execute",
                     lambda _c, _k, statement, *_: ran.append(" ".join(statement.split())))
    assert await upkeep(stack) == 0  # nothing counted twice; a pass with nothing new
    # costs the group changes one read past the watermark (by the primary key), no more
    (read,) = [r for r in ran if "group_customer_changes" in r or "stats_group" in r]
    assert read.startswith("SELECT") and "group_customer_changes.id >" in read, read
    expected = {"group_joins": 4, "group_leaves": 2, "group_net": 2, "group_handed_in": 1,
                "group_handed_out": 1, "group_members": 2}
    assert await _totals(stack) == expected

    stats = stack.runtime.services.stats
    assert stats is not None
    status, body = await stack.admin("/metrics/overview")
    guides = await stats.leaderboard("acme", *_range(body), "guide")
    await stats.backfill("acme")
    assert await _totals(stack) == expected
    assert await stats.leaderboard("acme", *_range(body), "guide") == guides
    assert await upkeep(stack) == 0

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/")
        assert status == 200
        assert _figures(html) == {"group_joins": 4, "group_leaves": 2, "group_net": 2,
                                  "group_members": 2}
        assert "入群" in html and "同一客户在同一导购的几个群里只计 1 人" in html  # defined
        status, board, _ = await console.get("/console/acme/guides")
        # lina: 3 joined, 1 left (c2) and 1 with the dismissal (c3), c1 went with 福利群
        assert _guide_row(board, "lina") == {"groups": 0, "group_members": 0, "group_net": 1}
        assert _guide_row(board, "mia") == {"groups": 1, "group_members": 2, "group_net": 1}
        status, stores, _ = await console.get("/console/acme/stores")
        row = re.search(r'data-store="">.*?</tr>', stores, re.S)  # guides of no store
        assert row and 'data-col="group_members">2<' in row.group(0)
        assert 'data-col="group_net">2<' in row.group(0)
        status, page, _ = await console.get("/console/acme/?lang=en")
        assert "once per guide however many of the" in page
        status, csv, _ = await console.get("/console/acme/guides?format=csv")
        header = csv.lstrip("\ufeff").splitlines()[0].split(",")
        assert header[header.index("group_customers"):header.index("group_net") + 1] == [
            "group_customers", "group_joins", "group_leaves", "group_net"]
        (mia,) = [line.split(",") for line in csv.splitlines()[1:] if ",mia," in line]
        assert mia[header.index("group_customers")] == "2"  # the figure group_members
    finally:
        await console.close()


def _range(body: dict[str, Any]) -> tuple[Any, Any]:
    from datetime import date
    return date.fromisoformat(body["from"]), date.fromisoformat(body["to"])


async def test_0058_writes_the_changes_so_far_and_the_job_counts_them(db_url: str) -> None:
    """Groups stored before 0058: their customers' joins and leaves are written as changes
    under the group's owner (corp members left out), and the next pass counts them."""
    await upgrade_async(db_url, "0031")
    await upgrade_async(db_url, "0014")
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as connection:
            for chat in ("wrA", "wrB"):
                await connection.execute(text(
                    "INSERT INTO group_chats (tenant, chat_id, name, owner, status, created_at, "
                    "member_version, customers, staff, synced_at) VALUES ('acme', :chat, '', "
                    "'lina', 0, :at, '', 0, 0, :at)"), {"chat": chat, "at": datetime(2026, 12, 1)})
            for chat, member, kind, joined, left in (
                    ("wrA", "lina", 1, datetime(2026, 12, 1, 2), None),
                    ("wrA", "wmA", 2, datetime(2026, 12, 1, 3), None),
                    ("wrB", "wmA", 2, datetime(2026, 12, 2, 3), datetime(2026, 12, 3, 3)),
                    ("wrB", "wmB", 2, None, datetime(2026, 12, 3, 4))):
                await connection.execute(text(
                    "INSERT INTO group_members (tenant, chat_id, member_id, kind, joined_at, "
                    "join_scene, invitor, left_at) VALUES ('acme', :chat, :member, :kind, "
                    ":joined, 0, '', :left)"),
                    {"chat": chat, "member": member, "kind": kind, "joined": joined,
                     "left": left})
        await upgrade_async(db_url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text(
                "SELECT chat_id, owner, external_userid, change FROM group_customer_changes "
                "ORDER BY id"))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("wrB", "lina", "wmB", "join"),  # no join time: the group's creation
        ("wrA", "lina", "wmA", "join"), ("wrB", "lina", "wmA", "join"),
        ("wrB", "lina", "wmA", "leave"), ("wrB", "lina", "wmB", "leave")]
    db = Database(db_url)
    try:
        stats = DailyStats(db, {"acme": ZoneInfo("Asia/Shanghai")})
        assert await stats.upkeep() == 5
        async with db.read() as s:
            days, total = await stats_repo.group_per_day(s, tenant="acme",
                                                         day_from="2026-12-01",
                                                         day_to="2026-12-31")
    finally:
        await db.dispose()
    assert {d["day"]: (d["group_joins"], d["group_leaves"]) for d in days} == {
        "2026-12-01": (2, 0), "2026-12-03": (0, 1)}  # wmA: in wrA all along
    assert total == 1
