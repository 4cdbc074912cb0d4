"""生日关怀 over HTTP: birthdays set by the admin API (one, or an import by external_userid or
unionid) and the console, and the shipped birthday_care SOP (trigger `birthday`,
days_before = 3) enrolling three days before, its coupon 群发 and day-of reminder, once a
year and again the next, Feb 29 in a year without one, opted-out customers left out, and a
missed day made up. The SOP clock is pinned: nothing depends on today's date."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from guidebot.db.models_sop import SopEnrollment
from guidebot.db.repo import sop_plan
from tests.support.console import Console, csrf_in
from tests.support.kf import customer_writes
from tests.support.stack import Stack
from tests.support.wecom import contact_event_xml

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test tenant's time zone
SOP = "birthday_care"
COUPON = "生日专享礼"  # messages/sop_birthday_coupon.toml's link title
GREETING = "私人祝福"  # messages/sop_birthday_greeting.toml
DAY = 86_400


@pytest.fixture(autouse=True)
def _pinned_sop_clock(request: pytest.FixtureRequest) -> None:
    """Birthdays set before a test pins the clock are set on Jan 10, 2031, no birthday's
    catch-up window here: what they enroll never depends on today's date."""
    if "stack" in request.fixturenames:
        stack = request.getfixturevalue("stack")
        stack.runtime.services.sop.clock = lambda: _at(2031, 1, 10, 12)


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment of the tenant's day, in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


async def _add(stack: Stack, name: str, guide: str = "lina", unionid: str | None = None) -> str:
    """A customer who adds the guide directly (no channel code: no other SOP enrolls them)."""
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name,
                                                     unionid=unionid)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _birthday(stack: Stack, customer: str, birthday: str | None) -> None:
    status, body = await stack.admin(f"/customers/{customer}/birthday", method="PUT",
                                     json={"birthday": birthday})
    assert status == 200, body
    assert body == {"external_userid": customer, "birthday": birthday}


async def _run_day(stack: Stack, moment: datetime) -> None:
    """The singleton job (scans, the day's birthdays) and a dispatcher pass at `moment`."""
    sop = stack.runtime.services.sop
    sop.clock = lambda: moment
    assert await sop.singletons("acme") is True
    await sop.tick("acme")


async def _enrollment(stack: Stack, customer: str, guide: str = "lina") -> SopEnrollment | None:
    async with stack.runtime.services.db.read() as s:
        return await sop_plan.find_enrollment(s, tenant="acme", sop_id=SOP,
                                              external_userid=customer, guide=guide)


def _coupons(stack: Stack) -> list[dict[str, Any]]:
    return [c["body"] for c in stack.calls("externalcontact/add_msg_template")
            if any(a.get("link", {}).get("title") == COUPON
                   for a in c["body"].get("attachments", []))]


def _greetings(stack: Stack) -> list[dict[str, Any]]:
    return [c["body"] for c in stack.calls("message/send")
            if GREETING in c["body"].get("textcard", {}).get("description", "")]


async def test_birthdays_are_set_one_by_one_and_imported_with_bad_rows_listed(
        stack: Stack) -> None:
    amy = await _add(stack, "张晓雨")
    ben = await _add(stack, "李雷", unionid="o-union-ben")
    status, card = await stack.admin(f"/customers/{amy}")
    assert status == 200 and card["birthday"] is None
    await _birthday(stack, amy, "03-15")
    _, card = await stack.admin(f"/customers/{amy}")
    assert card["birthday"] == "03-15"

    for bad, why in (("13-01", "no such day"), ("2023-02-29", "no such day"),
                     ("3/15", "MM-DD"), ("1850-03-15", "year")):
        status, body = await stack.admin(f"/customers/{amy}/birthday", method="PUT",
                                         json={"birthday": bad})
        assert status == 400 and body["field"] == "birthday", body
        assert body["error"].startswith("birthday: ") and why in body["reason"], body
    status, body = await stack.admin("/customers/wmNOBODY/birthday", method="PUT",
                                     json={"birthday": "01-01"})
    assert status == 404 and body["field"] == "external_userid"
    status, body = await stack.admin(f"/customers/{amy}/birthday", method="PUT", json={})
    assert status == 400 and body["field"] == "birthday"  # required (null clears)
    _, card = await stack.admin(f"/customers/{amy}")
    assert card["birthday"] == "03-15"  # no refusal changed it

    status, body = await stack.admin("/customers/birthdays", method="POST", json={"rows": [
        {"external_userid": amy, "birthday": "1990-03-16"},   # 0 stored
        {"unionid": "o-union-ben", "birthday": "02-29"},      # 1 stored, found by unionid
        {"external_userid": "wmNOBODY", "birthday": "01-01"},  # 2 unknown
        {"unionid": "o-nobody", "birthday": "01-01"},          # 3 unknown
        {"external_userid": amy, "birthday": "2023-02-29"},    # 4 no such day
        {"birthday": "05-05"},                                 # 5 no customer named
        {"external_userid": "not valid!", "birthday": "01-01"},  # 6 malformed id
        {"external_userid": amy, "birthday": "01-01", "colour": "red"},  # 7 unknown key
        {"external_userid": amy, "birthday": 315},             # 8 not a string
    ]})
    assert status == 200, body
    assert (body["stored"], body["cleared"]) == (2, 0)
    assert [(f["index"], f["field"]) for f in body["failed"]] == [
        (4, "birthday"), (5, "external_userid"), (6, "external_userid"), (7, "colour"),
        (8, "birthday")]
    assert body["unknown"] == [{"index": 2, "external_userid": "wmNOBODY"},
                               {"index": 3, "unionid": "o-nobody"}]
    _, card = await stack.admin(f"/customers/{amy}")
    assert card["birthday"] == "1990-03-16"  # the bad rows for amy changed nothing
    _, card = await stack.admin(f"/customers/{ben}")
    assert card["birthday"] == "02-29"
    status, body = await stack.admin("/customers/wmNOBODY")
    assert status == 404  # unknown customers are listed, never created

    status, body = await stack.admin("/customers/birthdays", method="POST", json={"rows": [
        {"external_userid": ben, "birthday": None}]})
    assert (status, body["stored"], body["cleared"]) == (200, 0, 1)
    _, card = await stack.admin(f"/customers/{ben}")
    assert card["birthday"] is None
    status, body = await stack.admin("/customers/birthdays", method="POST", json={
        "rows": [{"external_userid": amy, "birthday": "01-01"}] * 10_001})
    assert status == 400 and body["field"] == "rows"
    _, card = await stack.admin(f"/customers/{amy}")
    assert card["birthday"] == "1990-03-16"


async def test_the_console_shows_and_edits_the_birthday(stack: Stack) -> None:
    amy = await _add(stack, "张晓雨")
    await _birthday(stack, amy, "03-15")
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        page = f"/console/acme/customers/{amy}"
        status, html, _ = await console.get(page)
        assert status == 200 and '<dd id="birthday">03-15</dd>' in html
        form = f"{page}/birthday"
        status, _, _ = await console.post(form, {"birthday": "1990-04-01"})
        assert status == 403  # no CSRF token
        status, _, resp = await console.post(form, {"birthday": "1990-04-01",
                                                    "_csrf": csrf_in(html)})
        assert status == 303 and resp.headers["Location"].endswith("?birthday=1")
        status, html, _ = await console.get(page + "?birthday=1")
        assert '<dd id="birthday">1990-04-01</dd>' in html and "生日已保存" in html
        status, refused, _ = await console.post(form, {"birthday": "04-31",
                                                       "_csrf": csrf_in(html)})
        assert status == 400 and "生日格式不对" in refused
        _, card = await stack.admin(f"/customers/{amy}")
        assert card["birthday"] == "1990-04-01"
        status, _, _ = await console.post(form, {"birthday": "", "_csrf": csrf_in(html)})
        assert status == 303
        _, card = await stack.admin(f"/customers/{amy}")
        assert card["birthday"] is None
    finally:
        await console.close()


async def test_enrolled_three_days_before_once_a_year_and_again_the_next(
        stack: Stack) -> None:
    amy = await _add(stack, "张晓雨")
    await _add(stack, "没有生日")  # no birthday: never enrolled
    await _birthday(stack, amy, "03-15")

    await _run_day(stack, _at(2031, 3, 11, 8))  # 4 days before
    assert await _enrollment(stack, amy) is None
    await _run_day(stack, _at(2031, 3, 12, 8))  # 3 days before: enrolled at 00:00
    first = await _enrollment(stack, amy)
    assert first is not None and first.status == "active"
    assert first.trigger_at == _at(2031, 3, 12) and first.cycle_no == 2031
    _, body = await stack.admin("/sops")
    assert next(s for s in body["sops"] if s["id"] == SOP)["enrollments"] == {"active": 1}
    assert _coupons(stack) == []  # "day 0 at 10:00": not yet

    await _run_day(stack, _at(2031, 3, 12, 10, 1))
    [coupon] = _coupons(stack)
    assert coupon["sender"] == "lina" and coupon["external_userid"] == [amy]
    await _run_day(stack, _at(2031, 3, 15, 9, 29))
    assert _greetings(stack) == []
    await _run_day(stack, _at(2031, 3, 15, 9, 31))  # the day itself: the guide's reminder
    [greeting] = _greetings(stack)
    assert greeting["touser"] == "lina"
    done = await _enrollment(stack, amy)
    assert done is not None and done.status == "completed"

    # HQ moves the birthday later the same year: no second celebration this year
    await _birthday(stack, amy, "03-20")
    await _run_day(stack, _at(2031, 3, 17, 8))
    await _run_day(stack, _at(2031, 3, 17, 10, 1))
    again = await _enrollment(stack, amy)
    assert again is not None and (again.status, again.trigger_at) == (
        "completed", _at(2031, 3, 12))
    assert len(_coupons(stack)) == 1

    # next year: the same enrollment is re-armed (step 0, this year's trigger time)
    await _run_day(stack, _at(2032, 3, 17, 8))
    rearmed = await _enrollment(stack, amy)
    assert rearmed is not None and rearmed.id == first.id
    assert (rearmed.status, rearmed.next_step, rearmed.trigger_at, rearmed.cycle_no) == (
        "active", 0, _at(2032, 3, 17), 2032)
    await _run_day(stack, _at(2032, 3, 17, 10, 1))
    assert [c["external_userid"] for c in _coupons(stack)] == [[amy], [amy]]
    await _run_day(stack, _at(2032, 3, 20, 9, 31))
    assert len(_greetings(stack)) == 2
    async with stack.runtime.services.db.read() as s:
        steps = await sop_plan.customer_steps(s, tenant="acme", external_userid=amy)
    assert sorted((st.cycle_no, st.step_index, st.status) for st in steps) == [
        (2031, 0, "sent"), (2031, 1, "sent"), (2032, 0, "sent"), (2032, 1, "sent")]
    _, tasks = await stack.admin("/tasks?guide=lina")
    mine = [t for t in tasks["tasks"] if t["source"] == f"sop:{SOP}" and t["kind"] != "notify"]
    assert sorted((t["kind"], t["step"]) for t in mine) == [
        ("guide_task", 0), ("guide_task", 0), ("reminder", 1), ("reminder", 1)]


async def test_feb_29_is_celebrated_on_feb_28_in_years_without_one(stack: Stack) -> None:
    leap = await _add(stack, "闰日生")
    eve = await _add(stack, "二月末")
    quiet = await _add(stack, "已退订")
    for customer, birthday in ((leap, "2000-02-29"), (eve, "02-28"), (quiet, "02-29")):
        await _birthday(stack, customer, birthday)
    await customer_writes(stack, quiet, "退订")  # opts out in 微信客服: never enrolled

    await _run_day(stack, _at(2031, 2, 25, 8))  # 2031 has no Feb 29: both on Feb 28
    for customer in (leap, eve):
        found = await _enrollment(stack, customer)
        assert found is not None and found.trigger_at == _at(2031, 2, 25), customer
    assert await _enrollment(stack, quiet) is None
    await _run_day(stack, _at(2031, 2, 25, 10, 1))
    assert sorted(c for body in _coupons(stack) for c in body["external_userid"]) == sorted(
        [leap, eve])
    await _run_day(stack, _at(2031, 2, 28, 9, 31))
    assert len(_greetings(stack)) == 1  # one reminder naming both

    await _run_day(stack, _at(2032, 2, 25, 8))  # 2032 has one: Feb 28 is eve's alone
    eve_again = await _enrollment(stack, eve)
    assert eve_again is not None and eve_again.trigger_at == _at(2032, 2, 25)
    leap_then = await _enrollment(stack, leap)
    assert leap_then is not None and leap_then.status == "completed"
    await _run_day(stack, _at(2032, 2, 26, 8))
    leap_now = await _enrollment(stack, leap)
    assert leap_now is not None and leap_now.status == "active"
    assert leap_now.trigger_at == _at(2032, 2, 26)
    assert await _enrollment(stack, quiet) is None


async def test_once_through_the_bound_or_latest_guide_and_a_missed_day_made_up(
        stack: Stack) -> None:
    """A customer following two guides is celebrated once: through their exclusive guide (the
    first they added), else, their binding ended, through the relation begun last."""
    now = int(time.time())
    both = await _add(stack, "两位导购", guide="lina")  # bound to lina: added first
    await stack.sandbox.simulate_add_contact("acme", userid="wangfang", external_userid=both)
    await stack.runtime.drain()
    unbound = "wmBDAYFREE"
    for guide, days in (("lina", 10), ("zhou", 5), ("wangfang", 2)):
        await stack.sandbox.simulate_add_contact("acme", userid=guide, external_userid=unbound,
                                                 create_time=now - days * DAY)
        await stack.runtime.drain()
    xml = contact_event_xml("del_follow_user", corp_id=stack.tenant().corp_id, guide="lina",
                            external_userid=unbound, create_time=now - DAY)
    assert await stack.post_callback(xml) == 200  # deletes lina: the binding ends
    await stack.runtime.drain()
    for customer, bound in ((both, "lina"), (unbound, None)):
        _, view = await stack.admin(f"/customers/{customer}")
        assert view["exclusive_guide"] == bound, view
    missed = await _add(stack, "错过一天")
    caught = await _add(stack, "补上一天")
    for customer, birthday in ((both, "06-10"), (unbound, "06-10"), (missed, "06-11"),
                               (caught, "06-12")):
        await _birthday(stack, customer, birthday)

    await _run_day(stack, _at(2031, 6, 6, 8))  # the job last ran on Jun 6 ...
    await _run_day(stack, _at(2031, 6, 7, 8))  # ... and on Jun 7 (both, unbound: Jun 10)
    assert [g for g in ("lina", "wangfang") if await _enrollment(stack, both, g)] == ["lina"]
    assert [g for g in ("lina", "zhou", "wangfang")
            if await _enrollment(stack, unbound, g)] == ["wangfang"]
    # down on Jun 8 and 9; back on Jun 10: Jun 9 is made up, Jun 8 is not
    await _run_day(stack, _at(2031, 6, 10, 8))
    assert await _enrollment(stack, missed) is None  # Jun 8 (birthday Jun 11): too far back
    made_up = await _enrollment(stack, caught)  # Jun 9 (birthday Jun 12)
    assert made_up is not None and made_up.trigger_at == _at(2031, 6, 9)
    await _run_day(stack, _at(2031, 6, 10, 10, 1))
    await _run_day(stack, _at(2031, 6, 11, 10, 1))
    sent = sorted((c["sender"], who) for c in _coupons(stack) for who in c["external_userid"])
    assert sent == sorted([("lina", both), ("wangfang", unbound), ("lina", caught)])

    # the customer deletes wangfang (zhou is now begun last) and HQ re-sets the birthday the
    # same year, its trigger day passed: this round is taken already, through another guide
    xml = contact_event_xml("del_follow_user", corp_id=stack.tenant().corp_id,
                            guide="wangfang", external_userid=unbound, create_time=now)
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()
    stack.runtime.services.sop.clock = lambda: _at(2031, 6, 11, 12)
    await _birthday(stack, unbound, "06-13")
    await _run_day(stack, _at(2031, 6, 11, 12))
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopEnrollment.guide).where(
            SopEnrollment.sop_id == SOP, SopEnrollment.external_userid.in_(  # type: ignore[attr-defined]
                [both, unbound])))).scalars().all()
    assert sorted(rows) == ["lina", "wangfang"]


async def test_a_birthday_set_after_its_trigger_day_is_enrolled_at_once_and_once(
        stack: Stack) -> None:
    """HQ sets a birthday two days ahead (days_before = 3: the daily scan has passed its
    trigger day): the customer is enrolled when it is set, for this year's round and timed
    from the trigger day, by the API one at a time or an import; set again, nothing more."""
    amy = await _add(stack, "张晓雨")
    ben = await _add(stack, "李雷")
    dan = await _add(stack, "昨天生日")
    late = await _add(stack, "下周生日")
    await _run_day(stack, _at(2031, 3, 12, 8))
    await _run_day(stack, _at(2031, 3, 13, 8))  # the scans of Mar 12 and 13 have run
    stack.runtime.services.sop.clock = lambda: _at(2031, 3, 13, 9)
    await _birthday(stack, amy, "03-15")
    status, body = await stack.admin("/customers/birthdays", method="POST", json={"rows": [
        {"external_userid": ben, "birthday": "1990-03-14"},
        {"external_userid": dan, "birthday": "03-12"},  # passed: next year's round, later
        {"external_userid": late, "birthday": "03-20"}]})  # the scan enrolls it on Mar 17
    assert (status, body["stored"]) == (200, 3), body
    first = await _enrollment(stack, amy)
    assert first is not None and first.status == "active"
    assert (first.trigger_at, first.cycle_no) == (_at(2031, 3, 12), 2031)
    bens = await _enrollment(stack, ben)
    assert bens is not None and (bens.trigger_at, bens.cycle_no) == (_at(2031, 3, 11), 2031)
    assert await _enrollment(stack, dan) is None and await _enrollment(stack, late) is None

    await _run_day(stack, _at(2031, 3, 13, 10, 1))  # day 0's coupon, sent late: now
    assert sorted(c for body in _coupons(stack) for c in body["external_userid"]) == sorted(
        [amy, ben])
    await _birthday(stack, amy, "03-16")  # moved, same round: still once
    await _run_day(stack, _at(2031, 3, 14, 10, 1))
    again = await _enrollment(stack, amy)
    assert again is not None and (again.id, again.trigger_at) == (first.id, _at(2031, 3, 12))
    assert len(_coupons(stack)) == 1
    await _run_day(stack, _at(2031, 3, 17, 8))
    assert await _enrollment(stack, late) is not None


async def test_an_active_enrollment_is_left_alone(stack: Stack) -> None:
    """Enrolled by hand just before the birthday comes round: still on its way, it is not
    restarted by the birthday (only an ended enrollment of an earlier year is)."""
    amy = await _add(stack, "张晓雨")
    await _birthday(stack, amy, "03-15")
    sop = stack.runtime.services.sop
    sop.clock = lambda: _at(2031, 3, 11, 12)
    status, body = await stack.admin(f"/sops/{SOP}/enroll", method="POST",
                                     json={"external_userid": amy, "guide": "lina"})
    assert status == 201, body
    await _run_day(stack, _at(2031, 3, 12, 8))
    kept = await _enrollment(stack, amy)
    assert kept is not None and kept.id == body["enrollment_id"]
    assert (kept.status, kept.trigger_at, kept.cycle_no) == ("active", _at(2031, 3, 11, 12), 0)


def test_days_are_the_tenants() -> None:
    """The helper's own check: 00:00 in Shanghai is 16:00 UTC the day before."""
    assert _at(2031, 3, 12) == datetime(2031, 3, 11, 16, tzinfo=UTC)
    assert date(2031, 3, 12).isoformat() == "2031-03-12"
