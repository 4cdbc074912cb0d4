"""The per-customer quota through the set-based planner: customers in one SOP take the fast
path and land exactly where the pure planner puts them; customers with several enrollments
are planned one by one; nobody gets two 群发 steps in one natural day (quota 1/day)."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from guidebot.content import sop_planner as planner
from guidebot.db.repo import sop_plan
from tests.scenario.test_sop_delivery import DATA, T0, _process, _stop, _world
from tests.support.stack import ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")
COUNTED = ("planned", "queued", "sent")
# (sop, customer, guide): C1 is in both SOPs, C2 twice in one (two guides), the rest in one.
ENROLLED = [("quota_a", "wmC1", "guide0"), ("quota_b", "wmC1", "guide0"),
            ("quota_a", "wmC2", "guide0"), ("quota_a", "wmC2", "guide1"),
            *[("quota_a", f"wmS{i}", f"guide{i % 2}") for i in range(8)]]


def _library(tmp_path: Path) -> Path:
    folder = tmp_path / "lib"
    shutil.copytree(ROOT / "content_library", folder)
    for name in ("quota_a.toml", "quota_b.toml"):
        shutil.copy(DATA / name, folder / "sops" / name)
    return folder


async def test_the_quota_holds_across_sops_guides_and_passes(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    settings, _ = await _world(aiohttp_server, tmp_path, db_url, _library(tmp_path))
    services = _process(settings)
    currents = await services.sop.ready("acme")
    rows = [{"tenant": "acme", "sop_id": sop, "external_userid": customer, "guide": guide,
             "store_id": None, "trigger_at": T0, "status": "active", "reason": "",
             "version": currents[sop].version, "next_step": 0,
             "next_at": T0 + timedelta(minutes=1), "last_at": None, "created_at": T0,
             "updated_at": T0} for sop, customer, guide in ENROLLED]
    async with services.db.write() as s:
        await sop_plan.insert_enrollments(s, rows)
    for half_hours in range(1, 6 * 48):  # six days, a planner pass every 30 minutes
        services.sop.clock = lambda n=half_hours: T0 + timedelta(minutes=30 * n)
        await services.sop.plan("acme", limit=3)  # several passes per wave

    steps = {}
    async with services.db.read() as s:
        for customer in sorted({c for _, c, _ in ENROLLED}):
            steps[customer] = await sop_plan.customer_steps(s, tenant="acme",
                                                            external_userid=customer)
        counts = await sop_plan.enrollment_counts(s, tenant="acme")
    assert counts == {"quota_a": {"completed": 11}, "quota_b": {"completed": 1}}
    for customer, found in steps.items():
        days = Counter(st.due_at.astimezone(SHANGHAI).date() for st in found
                       if st.channel == "guide_task" and st.status in COUNTED)
        assert set(days.values()) == {1}, (customer, days)  # ≤ 1 a day, and none skipped
    assert len(steps["wmC1"]) == len(steps["wmC2"]) == 6
    assert any(st.reason.startswith("deferred: quota") for st in steps["wmC1"])

    spec = currents["quota_a"].spec
    expected = [p.at for p in planner.plan(
        T0, [st.rule for st in spec.steps], quiet=planner.parse_quiet(spec.quiet_hours),
        quota=planner.parse_quota("1/day"), tz=SHANGHAI)]
    for i in range(8):  # one enrollment each: the fast path, exactly as the pure planner says
        assert [st.due_at for st in steps[f"wmS{i}"]] == expected
    assert expected[1] - expected[0] > timedelta(hours=12)  # the +2h step was deferred
    await _stop(services)


async def test_a_step_planned_late_is_placed_for_when_it_goes_out(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """No planner pass from day 0 12:01 to day 1 23:30 (a process was down): the +2h step is
    not sent at once in the night, and the day-2 step that follows it still waits a day."""
    settings, _ = await _world(aiohttp_server, tmp_path, db_url, _library(tmp_path))
    services = _process(settings)
    currents = await services.sop.ready("acme")
    async with services.db.write() as s:
        await sop_plan.insert_enrollments(s, [{
            "tenant": "acme", "sop_id": "quota_a", "external_userid": "wmLATE", "guide": "g0",
            "store_id": None, "trigger_at": T0, "status": "active", "reason": "",
            "version": currents["quota_a"].version, "next_step": 0,
            "next_at": T0 + timedelta(minutes=1), "last_at": None, "created_at": T0,
            "updated_at": T0}])
    for at in (T0 + timedelta(minutes=2), T0 + timedelta(hours=35, minutes=30),
               *(T0 + timedelta(hours=35, minutes=30 + 30 * n) for n in range(1, 80))):
        services.sop.clock = lambda at=at: at
        await services.sop.plan("acme")
    async with services.db.read() as s:
        steps = await sop_plan.customer_steps(s, tenant="acme", external_userid="wmLATE")
    local = [st.due_at.astimezone(SHANGHAI) for st in steps]
    assert [(t.day, t.hour, t.minute) for t in local] == [(20, 12, 1), (22, 9, 0), (23, 9, 0)]
    await _stop(services)
