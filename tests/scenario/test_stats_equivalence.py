"""The upkeep, counting set by set in SQL, against a recount from scratch: seeded scenarios of
adds, deletions, transfers, orders (some paid before the customer's first purchase counted so
far, some with equal payment times, some arriving late) and ledger entries, counted stage by
stage in small batches, give exactly the cells a plain recount of every row by the
definitions gives; so does the backfill afterwards. The same holds for customer group
changes counted per owner. The tenant's zone has daylight saving, and some payments fall
just around its changes."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from guidebot.contacts import state_codec
from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.models import ChannelCode, FollowEvent, Guide
from guidebot.db.models_commerce import LedgerEntry, Order
from guidebot.db.models_groups import CUSTOMER, HANDED_IN, HANDED_OUT, JOIN, LEAVE, MEMBER
from guidebot.db.models_stats import (
    StatsDaily,
    StatsGroupDaily,
    StatsLayerAdds,
    StatsLayerBuyers,
)
from guidebot.db.repo import groups as groups_repo
from guidebot.db.repo import stats as stats_repo
from guidebot.db.repo.stats import COUNTS, GROUP_COUNTS
from guidebot.stats import daily
from guidebot.stats import definitions as d
from guidebot.stats.daily import DailyStats
from guidebot.stats.layers import tier_of

ZONE = ZoneInfo("America/New_York")  # daylight saving: 2026-03-08 07:00 and 11-01 06:00 UTC
T0 = datetime(2026, 2, 20, tzinfo=UTC)
EDGES = (datetime(2026, 3, 9, 4, 0, tzinfo=UTC),  # 00:00 on 9 March (EDT), 23:00 in EST
         datetime(2026, 3, 9, 3, 59, 59, tzinfo=UTC),
         datetime(2026, 11, 1, 4, 30, tzinfo=UTC),  # 00:30 on 1 November (still EDT)
         datetime(2026, 11, 2, 4, 30, tzinfo=UTC))  # 23:30 on 1 November (EST)
GUIDES = {"g1": "S1", "g2": None, "g3": "S3"}  # g4 is in no guides row
RULES = ("share_link", "exclusive_guide", "store", "none")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade_async(db_url)
    database = Database(db_url)
    yield database
    await database.dispose()


@dataclass
class World:
    """Every row written, for the recount."""

    codes: dict[int, str] = field(default_factory=dict)  # code id → store ('' for none)
    follows: list[FollowEvent] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    foreign: int = 0  # another tenant's code


def _day(at: datetime) -> str:
    return at.astimezone(ZONE).date().isoformat()


async def _stage(db: Database, world: World, rng: random.Random, stage: int,
                 added: list[str]) -> None:
    async with db.write() as s:
        for _ in range(rng.randrange(4, 14)):
            customer = f"c{rng.randrange(12):02d}"
            action = rng.choice(("added", "added", "added", "deleted_by_customer",
                                 "deleted_by_guide", "transferred", "half_added"))
            detail = ""
            if action == "added":
                detail = rng.choice(["", "not-ours", *map(state_codec.encode, world.codes),
                                     state_codec.encode(world.foreign),
                                     state_codec.encode(999)])
                added.append(customer)
            event = FollowEvent(tenant="acme", guide=rng.choice([*GUIDES, "g4"]),
                                external_userid=customer, action=action, detail=detail,
                                at=T0 + timedelta(minutes=rng.randrange(300 * 24 * 60)))
            s.add(event)
            world.follows.append(event)
    received = datetime.now(UTC) + timedelta(seconds=stage * 100)
    async with db.write() as s:
        for n in range(rng.randrange(3, 12)):
            customer = rng.choice([*added[-8:], "x1", "x2", None, ""]) if added else None
            paid = rng.choice([*EDGES, T0 + timedelta(days=40), T0 + timedelta(
                seconds=rng.randrange(300 * 86_400))])
            late = rng.random() < 0.2  # arrived before the watermark, committed after it
            order = Order(
                tenant="acme", order_no=f"{rng.choice('AaBb_')}{stage}{n:02d}",
                external_userid=customer, paid_at=paid, amount_fen=rng.randrange(1, 150_000),
                rule=rng.choice(RULES), guide=rng.choice([*GUIDES, None, ""]),
                store_id=rng.choice(["S1", "S2", None, ""]),
                credited_store=rng.choice(["S5", None, ""]), rule_version_id=0,
                evidence="{}", lines="[]",
                received_at=received - timedelta(minutes=2) if late else received)
            received += timedelta(seconds=1)
            s.add(order)
            world.orders.append(order)
        for n in range(rng.randrange(0, 6)):
            entry = LedgerEntry(tenant=rng.choice(["acme", "acme", "beta", "gone"]),
                                key=f"k{stage}-{n}", kind="earn",
                                guide=rng.choice([*GUIDES, "g4"]),
                                amount_fen=rng.randrange(-500, 5_000), period="2026-03",
                                created_at=rng.choice([*EDGES, T0 + timedelta(
                                    seconds=rng.randrange(300 * 86_400))]))
            s.add(entry)
            world.ledger.append(entry)


def _recount(world: World) -> tuple[dict[Any, dict[str, int]], dict[Any, int], dict[Any, int]]:
    """The daily cells and layer cells of tenant acme, from every row, by the definitions."""
    cells: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    first_add: dict[str, tuple[datetime, bool]] = {}
    following: dict[str, int] = defaultdict(int)
    for e in sorted((e for e in world.follows if e.tenant == "acme"), key=lambda e: e.id or 0):
        store = GUIDES.get(e.guide) or ""
        if e.action == d.ADDED:
            code = state_codec.decode(e.detail) if e.detail else None
            via_code = code in world.codes
            if code in world.codes and world.codes[code]:
                store = world.codes[code]
            cell = cells[(_day(e.at), store, e.guide)]
            cell["adds_code" if via_code else "adds_other"] += 1
            if e.external_userid not in first_add:
                first_add[e.external_userid] = (e.at, via_code)
                cell["new_customers_code" if via_code else "new_customers_other"] += 1
            following[e.external_userid] += 1
        elif e.action in d.ENDINGS:
            following[e.external_userid] = max(following[e.external_userid] - 1, 0)
            if e.action in d.DELETIONS:
                cells[(_day(e.at), store, e.guide)]["deletions"] += 1
    mine = [o for o in world.orders if o.tenant == "acme"]
    first_order = {}
    for o in sorted(mine, key=lambda o: (o.paid_at, o.order_no)):
        if o.external_userid:
            first_order.setdefault(o.external_userid, o.order_no)
    gmv: dict[str, int] = defaultdict(int)
    last_paid: dict[str, datetime] = {}
    for o in mine:
        cell = cells[(_day(o.paid_at), o.credited_store or o.store_id or "", o.guide or "")]
        cell["orders_all"] += 1
        cell["gmv_all_fen"] += o.amount_fen
        who = o.external_userid
        if who:
            cell["first_purchases" if first_order[who] == o.order_no else "repurchases"] += 1
            gmv[who] += o.amount_fen
            last_paid[who] = max(last_paid.get(who, o.paid_at), o.paid_at)
        if o.rule in d.GUIDE_RULES:
            cell["orders"] += 1
            cell["gmv_fen"] += o.amount_fen
            if who and who in first_add and first_add[who][1]:
                cell["orders_new"] += 1
                cell["gmv_new_fen"] += o.amount_fen
    for entry in world.ledger:
        if entry.tenant == "acme":
            key = (_day(entry.created_at), GUIDES.get(entry.guide) or "", entry.guide)
            cells[key]["commission_fen"] += entry.amount_fen
    adds: dict[Any, int] = defaultdict(int)
    buyers: dict[Any, int] = defaultdict(int)
    for who, (at, _) in first_add.items():
        follows = following[who] > 0
        adds[(_day(at), follows, tier_of(gmv.get(who, 0)))] += 1
        if follows and who in last_paid:
            buyers[(_day(last_paid[who]), _day(at))] += 1
    return ({k: {n: v for n, v in c.items() if v} for k, c in cells.items()
             if any(c.values())}, dict(adds), dict(buyers))


async def _counted(db: Database) -> tuple[dict[Any, dict[str, int]], dict[Any, int],
                                          dict[Any, int]]:
    async with db.read() as s:
        rows = (await s.execute(select(StatsDaily).where(StatsDaily.tenant == "acme"))).scalars()
        cells = {(r.day, r.store_id, r.guide): {n: getattr(r, n) for n in COUNTS
                                                if getattr(r, n)} for r in rows}
        adds = {(r.add_day, bool(r.following), r.tier): r.customers for r in (await s.execute(
            select(StatsLayerAdds).where(StatsLayerAdds.tenant == "acme"))).scalars()}
        buyers = {(r.paid_day, r.add_day): r.customers for r in (await s.execute(
            select(StatsLayerBuyers).where(StatsLayerBuyers.tenant == "acme"))).scalars()}
    return ({k: v for k, v in cells.items() if v}, {k: n for k, n in adds.items() if n},
            {k: n for k, n in buyers.items() if n})


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_set_based_upkeep_equals_a_recount_from_scratch(
        db: Database, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daily, "BATCH", 3)  # many small batches: their seams are tested
    monkeypatch.setattr(daily, "SET_BATCH", 4)
    rng = random.Random(seed)
    world = World()
    async with db.write() as s:
        s.add_all([Guide(tenant="acme", userid=g, store_id=store)
                   for g, store in GUIDES.items()])
        codes = [ChannelCode(tenant="acme", guide="g1", store_id=store)
                 for store in ("S7", None, "")]
        foreign = ChannelCode(tenant="beta", guide="g1", store_id="S8")  # not acme's
        s.add_all([*codes, foreign])
        await s.flush()
        world.codes = {int(c.id or 0): c.store_id or "" for c in codes}
        world.foreign = int(foreign.id or 0)
    stats = DailyStats(db, {"acme": ZONE, "beta": ZoneInfo("Asia/Shanghai")})
    added: list[str] = []
    for stage in range(6):
        await _stage(db, world, rng, stage, added)
        assert await stats.upkeep() > 0
    expected = _recount(world)
    assert expected[0] and expected[1] and expected[2]  # the scenario reaches every part
    assert await _counted(db) == expected
    assert await stats.upkeep() == 0  # nothing counted twice
    await stats.backfill("acme")
    assert await _counted(db) == expected


async def _seeded_world(db: Database, seed: int) -> tuple[World, random.Random]:
    rng = random.Random(seed)
    world = World()
    async with db.write() as s:
        s.add_all([Guide(tenant="acme", userid=g, store_id=store)
                   for g, store in GUIDES.items()])
        codes = [ChannelCode(tenant="acme", guide="g1", store_id="S7")]
        s.add_all(codes)
        await s.flush()
        world.codes = {int(c.id or 0): c.store_id or "" for c in codes}
    return world, rng


async def test_two_processes_counting_at_once_count_each_row_once(
        db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two upkeeps (two engines, as two processes would have) run at the same time: the
    lock and the marks let each row be counted by exactly one of them."""
    monkeypatch.setattr(daily, "SET_BATCH", 5)
    world, rng = await _seeded_world(db, 7)
    added: list[str] = []
    other = Database(db_url)
    try:
        one = DailyStats(db, {"acme": ZONE})
        two = DailyStats(other, {"acme": ZONE})
        for stage in range(4):
            await _stage(db, world, rng, stage, added)
            counted = await asyncio.gather(one.upkeep(), two.upkeep())
            assert sum(counted) > 0
        assert await _counted(db) == _recount(world)
        assert await one.upkeep() == 0 and await two.upkeep() == 0
    finally:
        await other.dispose()


async def test_a_batch_that_fails_midway_is_counted_whole_by_the_next_run(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after some of a batch's statements ran (as a crash would) rolls the whole
    batch back, watermark and marks included: the next run counts it once, nothing lost."""
    monkeypatch.setattr(daily, "SET_BATCH", 6)
    world, rng = await _seeded_world(db, 11)
    added: list[str] = []
    stats = DailyStats(db, {"acme": ZONE})
    for stage in range(3):
        await _stage(db, world, rng, stage, added)
    real = stats_repo._move_layers
    calls = 0

    async def fails_on_the_third_call(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # the second batch's first move: its claim and first cells are written
            raise RuntimeError("process killed")
        await real(*args, **kwargs)

    monkeypatch.setattr(stats_repo, "_move_layers", fails_on_the_third_call)
    with pytest.raises(RuntimeError):
        await stats.upkeep()
    monkeypatch.setattr(stats_repo, "_move_layers", real)
    assert await stats.upkeep() > 0
    assert await _counted(db) == _recount(world)
    assert await stats.upkeep() == 0


async def test_ledger_ids_committed_late_are_counted_once(db: Database) -> None:
    """Ledger ids are read as runs of contiguous ids: ids read past a hole (entries that
    committed after later ones) leave gaps, counted when they appear and never twice."""
    world, _ = await _seeded_world(db, 5)
    stats = DailyStats(db, {"acme": ZONE})

    async def add(*ids: int) -> None:
        async with db.write() as s:
            for i in ids:
                entry = LedgerEntry(id=i, tenant="acme", key=f"k{i}", kind="earn",
                                    guide=_guide_of(i), amount_fen=100 * i, period="2026-03",
                                    created_at=T0 + timedelta(hours=7 * i))
                s.add(entry)
                world.ledger.append(entry)

    await add(1, 2, 3, 6, 7, 9)  # 4, 5 and 8 not committed yet
    assert await stats.upkeep() == 6
    await add(5)
    assert await stats.upkeep() == 1
    await add(4, 8, 10, 11)
    assert await stats.upkeep() == 4
    assert await stats.upkeep() == 0
    expected = _recount(world)
    assert expected[0] and await _counted(db) == expected
    await stats.backfill("acme")
    assert await _counted(db) == expected


def _guide_of(i: int) -> str:
    return [*GUIDES, "g4"][i % 4]


CHATS = ("wrA", "wrB", "wrC", "wrD")
PEOPLE = tuple(f"wm{n}" for n in range(8))  # customers (external_userids)
COUNTED = {JOIN: "group_joins", LEAVE: "group_leaves", HANDED_IN: "group_handed_in",
           HANDED_OUT: "group_handed_out"}


@dataclass
class Groups:
    """The groups as the recount follows them: owner and customers of each live group, and
    in how many of an owner's groups each customer is."""

    owners: dict[str, str] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    in_groups: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    cells: dict[Any, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def change(self, owner: str, customer: str, change: str, at: datetime) -> None:
        before = self.in_groups[(owner, customer)]
        comes = change in (JOIN, HANDED_IN)
        self.in_groups[(owner, customer)] = before + 1 if comes else max(before - 1, 0)
        if before == (0 if comes else 1):
            self.cells[(_day(at), GUIDES.get(owner) or "", owner)][COUNTED[change]] += 1


async def _group_stage(db: Database, world: Groups, rng: random.Random) -> None:
    for _ in range(rng.randrange(3, 9)):
        at = rng.choice([*EDGES, T0 + timedelta(minutes=rng.randrange(300 * 24 * 60))])
        chat = rng.choice(CHATS)
        async with db.write() as s:
            if chat in world.owners and rng.random() < 0.15:  # dismissed (for good)
                await groups_repo.dismiss(s, tenant="acme", chat_id=chat, at=at)
                for customer in sorted(world.members.pop(chat, set())):  # again: none
                    world.change(world.owners[chat], customer, LEAVE, at)
                world.owners[chat] = ""
                continue
            if world.owners.get(chat) == "":
                continue  # a dismissed group stays dismissed
            old = world.owners.get(chat)
            owner = (rng.choice([*GUIDES, "g4"]) if old is None or rng.random() < 0.3
                     else old)
            now_in = {m for m in sorted(world.members.get(chat, set())) if rng.random() < 0.7}
            now_in |= set(rng.sample(PEOPLE, rng.randrange(0, 4)))
            members = [groups_repo.Member(owner, MEMBER, at, 1, ""),
                       *(groups_repo.Member(m, CUSTOMER, at, rng.choice((1, 2, 3)), "")
                         for m in sorted(now_in))]
            await groups_repo.store(s, tenant="acme", group=groups_repo.Group(
                chat_id=chat, name=chat, owner=owner, created_at=T0, member_version="",
                members=tuple(members)), status=None, at=at)
        before = world.members.get(chat, set())
        for customer in sorted(before - now_in):
            world.change(old or owner, customer, LEAVE, at)
        if old is not None and old != owner:
            for customer in sorted(before & now_in):
                world.change(old, customer, HANDED_OUT, at)
            for customer in sorted(before & now_in):
                world.change(owner, customer, HANDED_IN, at)
        for customer in sorted(now_in - before):
            world.change(owner, customer, JOIN, at)
        world.owners[chat], world.members[chat] = owner, now_in


async def _group_cells(db: Database) -> dict[Any, dict[str, int]]:
    async with db.read() as s:
        rows = (await s.execute(select(StatsGroupDaily).where(
            StatsGroupDaily.tenant == "acme"))).scalars()
        return {(r.day, r.store_id, r.guide): {n: getattr(r, n) for n in GROUP_COUNTS
                                               if getattr(r, n)} for r in rows
                if any(getattr(r, n) for n in GROUP_COUNTS)}


@pytest.mark.parametrize("seed", [1, 2])
async def test_group_changes_counted_as_they_come_equal_a_recount_and_the_backfill(
        db: Database, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups created, joined, left, handed to another owner and dismissed at random (a
    customer often in several groups of one owner), counted in small batches between
    stages, give the cells a recount by the definitions gives; so does the backfill."""
    monkeypatch.setattr(daily, "BATCH", 3)
    world, rng = await _seeded_world(db, seed)
    assert world.codes
    groups = Groups()
    stats = DailyStats(db, {"acme": ZONE})
    for _ in range(8):
        await _group_stage(db, groups, rng)
        await stats.upkeep()
    expected = {k: {n: v for n, v in c.items() if v} for k, c in groups.cells.items()
                if any(c.values())}
    kinds = {n for c in expected.values() for n in c}
    assert kinds == set(GROUP_COUNTS), kinds  # the scenario reaches every kind of change
    assert await _group_cells(db) == expected
    assert await stats.upkeep() == 0
    await stats.backfill("acme")
    assert await _group_cells(db) == expected
    async with db.read() as s:  # the total at the end: the customers in each owner's groups
        _, total = await stats_repo.group_per_day(s, tenant="acme", day_from="2027-12-31",
                                                  day_to="2027-12-31")
    assert total == sum(1 for n in groups.in_groups.values() if n > 0)
