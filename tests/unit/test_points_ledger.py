"""Points ledger properties on a real database (SQLite, and PostgreSQL when configured): the
points are Σ grade points of the counted uses + adjustments, where a use counts when another
guide than the contributor used an approved material, once per guide, material and day; and
replaying the same uses, in any order, through a new process (restart) counts nothing twice."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from guidebot.content.materials import Content
from guidebot.db.engine import Database
from guidebot.db.repo import materials as repo
from guidebot.materials.service import MaterialService, WrongStatus
from tests.support.materials_service import Clock, material_service, material_setup

__all__ = ["material_setup"]  # the fixture

GUIDES = ("lina", "zhaolei", "wangfang", "hq")
POINTS = {"S": 10, "A": 5, "B": 2, "C": 1}


async def _materials(service: MaterialService) -> dict[str, tuple[str, str]]:
    """Guides' materials (id → contributor, grade) approved with each grade, plus a withdrawn
    one and one waiting for review."""
    made: dict[str, tuple[str, str]] = {}
    for n, (guide, grade) in enumerate([("lina", "S"), ("lina", "A"), ("zhaolei", "B"),
                                        ("wangfang", "C")]):
        material = await service.create("acme", Content(text=f"素材 {n}"), source="guide",
                                         contributor=guide, material_id=f"g-{n}")
        await service.approve("acme", material.id, grade, "hq")
        made[material.id] = (guide, grade)
    await service.create("acme", Content(text="撤回"), source="guide", contributor="lina",
                         material_id="g-withdrawn")
    await service.withdraw("acme", "g-withdrawn", "lina")
    await service.create("acme", Content(text="待审"), source="guide", contributor="lina",
                         material_id="g-pending")
    return made


@pytest.mark.parametrize("seed", [1, 2])
async def test_points_are_the_grade_points_of_counted_uses_plus_adjustments(
        material_setup: Any, seed: int) -> None:
    settings, url = material_setup
    rng = random.Random(seed)
    clock = Clock()
    db = Database(url)
    service = material_service(settings, db, clock)
    made = await _materials(service)
    uses = []  # (key, material, guide, at)
    for n in range(60):
        material = rng.choice([*made, "g-withdrawn", "g-pending"])
        at = clock.now + timedelta(hours=rng.choice([0, 0, 1, 2, 30, 49]))
        uses.append((f"k{n}", material, rng.choice(GUIDES), at))
    expected: dict[str, int] = {}
    counted: set[tuple[str, str, str]] = set()
    for key, material, guide, at in uses:
        clock.now = at
        if material not in made:
            with pytest.raises(WrongStatus):
                await service.use("acme", material, guide=guide, channel="send", key=key)
            continue
        await service.use("acme", material, guide=guide, channel="send", key=key)
        contributor, grade = made[material]
        day = (at + timedelta(hours=8)).date().isoformat()  # Asia/Shanghai
        if guide != contributor and (material, guide, day) not in counted:
            counted.add((material, guide, day))
            expected[contributor] = expected.get(contributor, 0) + POINTS[grade]
    await service.points.adjust("acme", guide="lina", points=-4, reason="纠正", operator="hq",
                                key="adj-1")
    expected["lina"] = expected.get("lina", 0) - 4
    await db.dispose()

    # a restart: a new process replays every use (same keys), shuffled, and the adjustment
    again = Database(url)
    replay = material_service(settings, again, clock)
    rng.shuffle(uses)
    for key, material, guide, at in uses:
        clock.now = at
        if material in made:
            result = await replay.use("acme", material, guide=guide, channel="send", key=key)
            assert (result["recorded"], result["points"]) == (False, 0)
    await replay.points.adjust("acme", guide="lina", points=-4, reason="纠正", operator="hq",
                               key="adj-1")
    async with again.read() as s:
        entries = await repo.points_entries(s, tenant="acme")
    totals: dict[str, int] = {}
    for entry in entries:
        totals[entry.guide] = totals.get(entry.guide, 0) + entry.points
    assert totals == expected
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys)) == len(counted) + 1
    assert all(e.guide != e.user for e in entries if e.kind == "use")
    await again.dispose()


async def test_the_daily_cap_follows_the_tenant_day(material_setup: Any) -> None:
    settings, url = material_setup
    clock = Clock()  # 23:00 in Shanghai on 30 Nov
    db = Database(url)
    service = material_service(settings, db, clock)
    await service.create("acme", Content(text="围巾"), source="guide", contributor="lina",
                         material_id="g-1")
    await service.approve("acme", "g-1", "A", "hq")

    async def earned(key: str) -> int:
        return int((await service.use("acme", "g-1", guide="zhaolei", channel="send",
                                      key=key))["points"])

    assert await earned("a") == 5
    clock.now += timedelta(minutes=30)  # 23:30, same local day
    assert await earned("b") == 0
    clock.now += timedelta(minutes=45)  # 00:15 on 1 Dec local (still 30 Nov in UTC)
    assert await earned("c") == 5
    board = await service.points.leaderboard("acme", "2026-12")
    assert board["guides"] == [{"rank": 1, "guide": "lina", "points": 5, "uses": 1}]
    await db.dispose()
