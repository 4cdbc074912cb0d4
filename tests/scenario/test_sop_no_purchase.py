"""复购提醒 / 新客未转化 over HTTP: SOPs of trigger `no_purchase` (tests/data/sop/lapsed.toml:
30 days after the last purchase; unconverted.toml: 7 days after the add, never bought, once
per customer), customers added by encrypted callbacks, orders through the signed orders
webhook at chosen paid times, and the daily scan run at injected days of the tenant. Nothing
depends on today's date or the time of day: the SOP clock is pinned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.db.models_sop import SopEnrollment
from tests.support.commerce import paid, post_settled, refunded
from tests.support.console import Console
from tests.support.kf import customer_writes
from tests.support.stack import ROOT, Stack, library_copy, start_stack
from tests.support.wecom import contact_event_xml

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test tenant's time zone
LAPSED, UNCONVERTED = "lapsed", "unconverted"


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment of the tenant's day, in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
async def lapsed_stack(aiohttp_server, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """The stack with the shipped library plus the two no_purchase test SOPs, the SOP clock
    pinned to a day before any order or add of the tests."""
    library = library_copy(tmp_path, {
        f"sops/{name}.toml": ROOT / f"tests/data/sop/{name}.toml"
        for name in (LAPSED, UNCONVERTED)})
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    s.runtime.services.sop.clock = lambda: _at(2031, 1, 1, 12)
    yield s
    await s.http.close()


async def _add(stack: Stack, name: str, guide: str = "lina", at: datetime | None = None,
               external_userid: str | None = None) -> str:
    """A customer who adds the guide directly (no channel code), at `at` when given."""
    added = await stack.sandbox.simulate_add_contact(
        "acme", userid=guide, name=name, external_userid=external_userid,
        create_time=int(at.timestamp()) if at else None)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _buy(stack: Stack, order_no: str, customer: str, at: datetime,
               fen: int = 19900) -> None:
    status, body = await post_settled(stack, paid(order_no, customer=customer, paid_at=at,
                                                  items=[{"sku": "SKU1", "category": "beauty",
                                                          "quantity": 1, "amount_fen": fen}]))
    assert status == 200, body


async def _run_day(stack: Stack, moment: datetime) -> None:
    """The singleton job (scans, the day's no_purchase enrolments) at `moment`."""
    sop = stack.runtime.services.sop
    sop.clock = lambda: moment
    assert await sop.singletons("acme") is True


async def _enrolled(stack: Stack, sop_id: str) -> dict[str, SopEnrollment]:
    """The SOP's enrollments by customer (one relation each in these tests)."""
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopEnrollment).where(
            SopEnrollment.tenant == "acme", SopEnrollment.sop_id == sop_id))).scalars().all()
    return {r.external_userid: r for r in rows}


def _active(rows: dict[str, SopEnrollment]) -> set[str]:
    return {c for c, r in rows.items() if r.status == "active"}


async def test_enrolled_on_day_n_of_the_last_purchase_again_after_buying_and_lapsing(
        lapsed_stack: Stack) -> None:
    stack = lapsed_stack
    amy = await _add(stack, "张晓雨")
    ben = await _add(stack, "李雷")
    cat = await _add(stack, "从未购买")  # never bought: not for since = last_order
    dan = await _add(stack, "已退订")
    eve = await _add(stack, "删了导购")
    fay = await _add(stack, "全额退款")
    await _buy(stack, "O-AMY-1", amy, _at(2031, 1, 2, 9))  # an earlier purchase ...
    await _buy(stack, "O-AMY-2", amy, _at(2031, 1, 5, 23, 50))  # ... her last: Jan 5
    await _buy(stack, "O-BEN-1", ben, _at(2031, 1, 4, 0, 5))  # Jan 4
    for customer in (dan, eve):
        await _buy(stack, f"O-{customer}", customer, _at(2031, 1, 5, 12))
    await _buy(stack, "O-FAY-1", fay, _at(2031, 1, 4, 12))
    await _buy(stack, "O-FAY-2", fay, _at(2031, 1, 5, 12), fen=5000)
    status, body = await post_settled(stack, refunded(  # all of Jan 5's: her last is Jan 4
        "O-FAY-2", "R-FAY-2", [{"sku": "SKU1", "amount_fen": 5000}], at=_at(2031, 1, 6)))
    assert status == 200, body
    await customer_writes(stack, dan, "退订")  # opts out in 微信客服
    xml = contact_event_xml("del_follow_user", corp_id=stack.tenant().corp_id, guide="lina",
                            external_userid=eve, create_time=int(_at(2031, 1, 6).timestamp()))
    assert await stack.post_callback(xml) == 200  # eve deletes her guide: no live relation
    await stack.runtime.drain()

    await _run_day(stack, _at(2031, 2, 2, 8))  # day 29 of Jan 4, day 28 of Jan 5
    assert await _enrolled(stack, LAPSED) == {}
    await _run_day(stack, _at(2031, 2, 3, 8))  # day 30 of Jan 4: ben and fay
    rows = await _enrolled(stack, LAPSED)
    assert set(rows) == {ben, fay}
    assert (rows[ben].trigger_at, rows[ben].cycle_no, rows[ben].guide) == (
        _at(2031, 2, 3), 20310104, "lina")
    await _run_day(stack, _at(2031, 2, 4, 8))  # day 30 of Jan 5: amy (not dan, not eve)
    rows = await _enrolled(stack, LAPSED)
    assert set(rows) == {ben, fay, amy} and cat not in rows
    assert (rows[amy].trigger_at, rows[amy].cycle_no) == (_at(2031, 2, 4), 20310105)
    assert await _enrolled(stack, UNCONVERTED) == {}  # they were not added on the scanned days

    # the day once more (a second process, a restart): nothing new, nothing re-armed
    engine = stack.runtime.services.sop.engine
    current = (await stack.runtime.services.sop.ready("acme"))[LAPSED]
    assert await engine.on_no_purchase("acme", current, _at(2031, 2, 4, 8).astimezone(
        SHANGHAI).date()) == 0

    # the 群发 goes out on the day at 10:00
    stack.runtime.services.sop.clock = lambda: _at(2031, 2, 4, 10, 1)
    await stack.runtime.services.sop.tick("acme")
    sent = sorted(c for call in stack.calls("externalcontact/add_msg_template")
                  for c in call["body"]["external_userid"])
    assert sent == sorted([ben, fay, amy])

    # ben buys again on Feb 5: the order-paid exit ends his enrollment ...
    await _buy(stack, "O-BEN-2", ben, _at(2031, 2, 5, 15))
    rows = await _enrolled(stack, LAPSED)
    assert (rows[ben].status, rows[ben].reason) == ("exited", "order_paid")
    assert _active(rows) == {amy, fay}
    # ... and 30 days after that purchase he enrolls again, the same row re-armed
    await _run_day(stack, _at(2031, 3, 6, 8))
    assert (await _enrolled(stack, LAPSED))[ben].status == "exited"
    await _run_day(stack, _at(2031, 3, 7, 8))
    again = (await _enrolled(stack, LAPSED))[ben]
    assert again.id == rows[ben].id
    assert (again.status, again.next_step, again.trigger_at, again.cycle_no) == (
        "active", 0, _at(2031, 3, 7), 20310205)


async def test_a_missed_day_is_made_up_one_day_back(lapsed_stack: Stack) -> None:
    stack = lapsed_stack
    early = await _add(stack, "两天前")
    late = await _add(stack, "一天前")
    today = await _add(stack, "今天")
    await _buy(stack, "O-1", early, _at(2031, 1, 6, 12))  # day 30: Feb 5
    await _buy(stack, "O-2", late, _at(2031, 1, 7, 12))  # day 30: Feb 6
    await _buy(stack, "O-3", today, _at(2031, 1, 8, 12))  # day 30: Feb 7
    await _run_day(stack, _at(2031, 2, 4, 8))
    # down on Feb 5 and 6; back on Feb 7: Feb 6 is made up, Feb 5 is not
    await _run_day(stack, _at(2031, 2, 7, 8))
    rows = await _enrolled(stack, LAPSED)
    assert set(rows) == {late, today}
    assert rows[late].trigger_at == _at(2031, 2, 6)
    assert rows[today].trigger_at == _at(2031, 2, 7)


async def test_since_added_takes_only_customers_who_never_bought_once_each(
        lapsed_stack: Stack) -> None:
    stack = lapsed_stack
    added = _at(2031, 1, 10, 15)
    newbie = await _add(stack, "新客", at=added)
    await _add(stack, "新客", guide="wangfang", at=_at(2031, 1, 10, 16),
               external_userid=newbie)  # a second guide the same day: enrolled once
    buyer = await _add(stack, "已下单", at=added)
    refunded_all = await _add(stack, "退款了", at=added)
    earlier = await _add(stack, "早一天", at=_at(2031, 1, 9, 15))
    await _buy(stack, "O-B", buyer, _at(2031, 1, 12, 12))
    await _buy(stack, "O-R", refunded_all, _at(2031, 1, 12, 12), fen=3000)
    status, body = await post_settled(stack, refunded(
        "O-R", "R-R", [{"sku": "SKU1", "amount_fen": 3000}], at=_at(2031, 1, 13)))
    assert status == 200, body

    await _run_day(stack, _at(2031, 1, 16, 8))  # day 7 of Jan 9: earlier
    assert set(await _enrolled(stack, UNCONVERTED)) == {earlier}
    await _run_day(stack, _at(2031, 1, 17, 8))  # day 7 of Jan 10
    rows = await _enrolled(stack, UNCONVERTED)
    assert set(rows) == {earlier, newbie, refunded_all}  # a refunded order is no purchase
    assert rows[newbie].cycle_no == 20310110 and rows[newbie].trigger_at == _at(2031, 1, 17)
    async with stack.runtime.services.db.read() as s:
        guides = (await s.execute(select(SopEnrollment.guide).where(
            SopEnrollment.sop_id == UNCONVERTED,
            SopEnrollment.external_userid == newbie))).scalars().all()
    # reach = "customer": once, through their exclusive guide (bound by the first add)
    assert guides == ["lina"]
    assert buyer not in await _enrolled(stack, LAPSED)  # Jan 12 + 30 is not here yet


async def test_the_console_says_the_trigger_in_words(lapsed_stack: Stack) -> None:
    stack = lapsed_stack
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        for lang, words in (("zh-CN", ("最近一次购买后 30 天未再购买", "添加后 7 天从未购买")),
                            ("en", ("30 days without buying since the last purchase",
                                    "7 days since the add without ever buying"))):
            status, page, _ = await console.get(f"/console/acme/sops?lang={lang}")
            assert status == 200
            for text in words:
                assert text in page, (lang, text)
        status, page, _ = await console.get(f"/console/acme/sops/{LAPSED}?lang=zh-CN")
        assert status == 200
        assert 'id="no-purchase" data-days="30" data-since="last_order"' in page
        assert "恰好满 30 天" in page and "最近一次已付款且未全额退款的订单" in page
    finally:
        await console.close()
    _, body = await stack.admin("/sops")
    trigger = next(s for s in body["sops"] if s["id"] == UNCONVERTED)["trigger"]
    assert (trigger["on"], trigger["days"], trigger["since"], trigger["reach"]) == (
        "no_purchase", 7, "added", "customer")


SOP = """id = "{id}"
title = "t"

[trigger]
on = "{on}"
{trigger}
{exit}
[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_winback_miss_you"
"""


def _problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    library = library_copy(tmp_path, files)
    with pytest.raises(ContentInvalid) as info:
        load_library(library)
    return [str(p) for p in info.value.problems]


def test_spec_errors_name_file_and_line(tmp_path: Path) -> None:
    exits = '[exit]\non = ["order_paid"]\n'

    def sop(ident: str, trigger: str, exit_: str = exits, on: str = "no_purchase") -> str:
        return SOP.format(id=ident, on=on, trigger=trigger, exit=exit_)
    lines = _problems(tmp_path, {
        "sops/nodays.toml": sop("nodays", ""),
        "sops/far.toml": sop("far", "days = 731"),
        "sops/zero.toml": sop("zero", "days = 0"),
        "sops/text.toml": sop("text", 'days = "90"'),
        "sops/since.toml": sop("since", 'days = 90\nsince = "first_order"'),
        "sops/noexit.toml": sop("noexit", "days = 90", '[exit]\non = ["contact_deleted"]\n'),
        "sops/bare.toml": sop("bare", "days = 90", ""),
        "sops/other.toml": sop("other", "days = 90", on="tag_added"),
    })
    expected = [("nodays.toml:5:", "needs a whole number of days from 1 to 730"),
                *((f"{n}.toml:6:", "from 1 to 730") for n in ("far", "zero", "text")),
                ("since.toml:7:", "since must be one of last_order, added"),
                ("noexit.toml:8:", "must exit on order_paid"),  # the exit's on
                ("bare.toml:4:", "must exit on order_paid"),  # no [exit]: the [trigger]
                ("other.toml:6:", "days only applies to no_purchase")]
    for where, what in expected:
        assert any(where in x and what in x for x in lines), (where, lines)


def test_a_no_purchase_sop_loads(tmp_path: Path) -> None:
    from guidebot.content.sop_spec import sop_from_json
    library = library_copy(tmp_path, {f"sops/{n}.toml": ROOT / f"tests/data/sop/{n}.toml"
                                      for n in (LAPSED, UNCONVERTED)})
    loaded = load_library(library).sops
    lapsed, unconverted = loaded[LAPSED], loaded[UNCONVERTED]
    assert (lapsed.trigger.days, lapsed.trigger.since, lapsed.trigger.reach) == (
        30, "last_order", "relation")
    assert (unconverted.trigger.days, unconverted.trigger.since,
            unconverted.trigger.reach) == (7, "added", "customer")
    for spec in (lapsed, unconverted):
        assert sop_from_json(spec.to_json()) == spec  # a stored version reads back the same
