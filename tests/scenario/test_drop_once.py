"""An HQ 群发 reaches each customer once: a customer following two guides gets a drop through
one of them — their exclusive guide while that relation is live and admitted, else the
relation they began last — a guide filter choosing among the admitted relations only; their
per-customer quota counts the drop once, so with 2 a day a second drop still reaches them;
the 群发记录 (API and console) counts the relations left out; an SOP enrolment by audience
enrolls them once. Relations are made by real callbacks at their CreateTime; the SOP clock
is pinned."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sqlalchemy import select

from guidebot.db.models_sop import SopEnrollment
from tests.scenario.test_hq_drops import NOW, _sends
from tests.support.console import Console
from tests.support.stack import Stack, start_stack
from tests.support.wecom import contact_event_xml

DAY = 86_400
QUOTA = '[tenants.acme.quotas]\nmass_msg_per_customer = "2/day"\n'


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Any,  # type: ignore[no-untyped-def]
                db_url: str):
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=QUOTA)
    stack.runtime.services.sop.clock = lambda: NOW
    yield stack
    await stack.http.close()


async def _two_guides(stack: Stack) -> None:
    """wmONCE1: lina's (bound: first), then zhou's (begun last). wmONCE2: lina's, zhou's,
    wangfang's (begun last); then the customer deletes lina, which ends the binding. Both
    tagged 直播间 (by zhou)."""
    now = int(time.time())
    for guide, customer, days in (("lina", "wmONCE1", 10), ("zhou", "wmONCE1", 5),
                                  ("lina", "wmONCE2", 10), ("zhou", "wmONCE2", 5),
                                  ("wangfang", "wmONCE2", 2)):
        await stack.sandbox.simulate_add_contact("acme", userid=guide, external_userid=customer,
                                                 create_time=now - days * DAY)
        await stack.runtime.drain()
    for customer in ("wmONCE1", "wmONCE2"):
        status, body = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                         json={"guide": "zhou", "add": ["直播间"]})
        assert status == 200, body
    xml = contact_event_xml("del_follow_user", corp_id=stack.tenant().corp_id, guide="lina",
                            external_userid="wmONCE2", create_time=now - DAY)
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()
    for customer, bound in (("wmONCE1", "lina"), ("wmONCE2", None)):
        status, view = await stack.admin(f"/customers/{customer}")
        assert status == 200 and view["exclusive_guide"] == bound, view


async def _drop(stack: Stack, audience: dict[str, Any]) -> dict[str, Any]:
    status, sent = await stack.admin("/drops", method="POST", json={
        "title": "直播预告", "channel": "guide_task", "message": "drop_double12_warmup",
        "audience": audience, "at": "now"})
    assert status == 201, sent
    await stack.runtime.services.sop.tick("acme")
    return sent


async def _drop_tasks(stack: Stack, drop: str) -> list[tuple[str, int, int, int]]:
    status, body = await stack.admin("/tasks")
    assert status == 200, body
    return sorted((t["guide"], t["recipients"], t["detail"].get("over_quota", 0),
                   t["detail"].get("duplicates", 0)) for t in body["tasks"]
                  if t["source"] == f"drop:{drop}" and t["kind"] == "guide_task")


async def test_a_customer_of_two_guides_gets_one_drop_through_the_bound_or_latest_guide(
        stack: Stack) -> None:
    await _two_guides(stack)
    sent = await _drop(stack, {"tags_any": ["直播间"]})
    assert sent["tasks"] == 2
    drop = sent["drop"]["id"]
    # wmONCE1 through lina (bound), wmONCE2 through wangfang (no binding: begun last)
    assert _sends(stack) == [("lina", ("wmONCE1",)), ("wangfang", ("wmONCE2",))]
    # zhou's two relations left out, counted on the tasks of the guides who reach them
    assert await _drop_tasks(stack, drop) == [("lina", 1, 0, 1), ("wangfang", 1, 0, 1)]
    status, sends = await stack.admin(f"/drops/{drop}/sends")
    assert status == 200, sends
    [firing] = sends["firings"]
    assert (firing["recipients"], firing["duplicates"], firing["over_quota"]) == (2, 2, 0)

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/drops/{drop}")
        assert status == 200 and "已由其他导购触达" in html, html
        row = re.search(rf'data-firing="{re.escape(firing["firing"])}".*?</tr>', html, re.S)
        assert row and 'data-duplicates="2"' in row.group(0), html
    finally:
        await console.close()


async def test_a_guide_filter_picks_the_admitted_guide_and_the_quota_counts_once(
        stack: Stack) -> None:
    await _two_guides(stack)
    # zhou's drop reaches both through zhou, though neither is reached through zhou by default
    first = await _drop(stack, {"tags_any": ["直播间"], "guides": ["zhou"]})
    assert _sends(stack) == [("zhou", ("wmONCE1", "wmONCE2"))]
    assert await _drop_tasks(stack, first["drop"]["id"]) == [("zhou", 2, 0, 0)]
    # the quota (2 a day) counted once each: a second drop the same day still reaches them
    second = await _drop(stack, {"tags_any": ["直播间"]})
    assert await _drop_tasks(stack, second["drop"]["id"]) == [("lina", 1, 0, 1),
                                                         ("wangfang", 1, 0, 1)]
    # a third does not: their quota for the day is used
    third = await _drop(stack, {"tags_any": ["直播间"]})
    assert await _drop_tasks(stack, third["drop"]["id"]) == []
    assert _sends(stack) == [("lina", ("wmONCE1",)), ("wangfang", ("wmONCE2",)),
                             ("zhou", ("wmONCE1", "wmONCE2"))]


async def test_an_enrolment_by_audience_enrolls_a_customer_of_two_guides_once(
        stack: Stack) -> None:
    await _two_guides(stack)
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"tags_any": ["直播间"]}})
    assert status == 200 and body["enrolled"] == 2, body
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"guides": ["zhou"]}})
    assert status == 200 and body["enrolled"] == 0, body  # enrolled through another guide
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopEnrollment.guide, SopEnrollment.external_userid)
                                .where(SopEnrollment.tenant == "acme",
                                       SopEnrollment.sop_id == "repurchase_care"))).all()
    assert sorted(map(tuple, rows)) == [("lina", "wmONCE1"), ("wangfang", "wmONCE2")]
