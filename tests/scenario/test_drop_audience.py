"""A 新建群发's and an SOP enrolment's audience, filtered in the database: tags by name over all
of a customer's guides (any of, all of, none of), the relation's guide, opted-out customers
left out, a customer with two guides reached through both, the per-customer 群发 quota
leaving customers out of a drop (not of an enrolment), a segment with the audience's own
lists; a drop reads its audience a page at a time (one relation a page here, so the pages
cross from guide to guide). The SOP clock is pinned: nothing here depends on the real
time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from guidebot.db.models_kf import OptOut
from guidebot.db.models_sop import SopEnrollment
from guidebot.sop import drops
from tests.scenario.test_hq_drops import NOW, _customer, _sends
from tests.scenario.test_segments import _tag_ids
from tests.support.stack import Stack, start_stack


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Any, db_url: str,  # type: ignore[no-untyped-def]
                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(drops, "AUDIENCE_PAGE", 1)
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    stack.runtime.services.sop.clock = lambda: NOW
    yield stack
    await stack.http.close()


async def _tag(stack: Stack, customer: str, guide: str, *names: str) -> None:
    status, body = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                     json={"guide": guide, "add": list(names)})
    assert status == 200, body


async def _people(stack: Stack) -> dict[str, str]:
    """x: lina's and zhou's, 新客 from lina only; y: lina's, 新客 and 复购客; z: zhou's, 新客,
    opted out; w: zhou's, no tag; v: lina's, 新客 and 门店扫码; u: zhou's, 新客 and 门店扫码."""
    people = {key: await _customer(stack, guide, name) for key, guide, name in (
        ("x", "lina", "陈思"), ("y", "lina", "王芳"), ("z", "zhou", "李娜"),
        ("w", "zhou", "赵敏"), ("v", "lina", "周宁"), ("u", "zhou", "林悦"))}
    await stack.sandbox.simulate_add_contact("acme", userid="zhou",
                                             external_userid=people["x"])
    await stack.runtime.drain()
    for key, guide, names in (("x", "lina", ("新客",)), ("x", "zhou", ("直播间",)),
                              ("y", "lina", ("新客", "复购客")), ("z", "zhou", ("新客",)),
                              ("v", "lina", ("新客", "门店扫码")),
                              ("u", "zhou", ("新客", "门店扫码"))):
        await _tag(stack, people[key], guide, *names)
    async with stack.runtime.services.db.write() as s:
        s.add(OptOut(tenant="acme", external_userid=people["z"], msgid="kf-msg-1"))
    return people


async def _drop(stack: Stack, audience: dict[str, Any]) -> int:
    status, sent = await stack.admin("/drops", method="POST", json={
        "title": "会员日", "channel": "guide_task", "message": "drop_double12_warmup",
        "audience": audience, "at": "now"})
    assert status == 201, sent
    await stack.runtime.services.sop.tick("acme")
    return int(sent["tasks"])


async def test_a_drop_reaches_the_relations_its_audience_admits(stack: Stack) -> None:
    p = await _people(stack)
    # v's 群发 for the day (1/day): tags_all and the guide narrow it to v (u is zhou's)
    assert await _drop(stack, {"tags_all": ["新客", "门店扫码"], "guides": ["lina"]}) == 1
    assert _sends(stack) == [("lina", (p["v"],))]

    tasks = await _drop(stack, {"tags_any": ["新客", "沉睡客"], "tags_none": ["复购客"]})
    # x through both guides (tagged by lina only: tags are the customer's), not y (复购客),
    # z (opted out) or w (no tag); v left out on quota
    assert tasks == 2
    assert _sends(stack) == sorted([("lina", (p["v"],)), ("lina", (p["x"],)),
                                    ("zhou", tuple(sorted([p["u"], p["x"]])))])
    status, body = await stack.admin("/tasks")
    assert status == 200, body
    made = sorted((t["guide"], t["recipients"], t["detail"].get("over_quota", 0))
                  for t in body["tasks"]
                  if t["kind"] == "guide_task" and t["source"].startswith("drop:"))
    assert made == [("lina", 1, 0), ("lina", 1, 1), ("zhou", 2, 0)], made


async def test_an_enrolment_admits_the_same_relations_without_the_quota(stack: Stack) -> None:
    p = await _people(stack)
    audience = {"tags_any": ["新客"], "tags_none": ["复购客"]}
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": audience})
    assert status == 200 and body["enrolled"] == 4, body
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"tags_all": ["新客", "门店扫码"],
                                                        "guides": ["zhou"]}})
    assert status == 200 and body["enrolled"] == 0, body  # u@zhou: enrolled already
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopEnrollment.guide, SopEnrollment.external_userid)
                                .where(SopEnrollment.tenant == "acme",
                                       SopEnrollment.sop_id == "repurchase_care"))).all()
    assert sorted(map(tuple, rows)) == sorted([("lina", p["x"]), ("zhou", p["x"]),
                                               ("lina", p["v"]), ("zhou", p["u"])])


async def test_a_segment_and_the_audience_lists_narrow_each_other(stack: Stack) -> None:
    p = await _people(stack)
    tags = await _tag_ids(stack)
    status, made = await stack.admin("/segments", method="POST", json={
        "name": "门店扫码", "conditions": {"tags_any": [tags["门店扫码"]]}})
    assert status == 201 and made["count"] == 2, made  # v and u
    # the segment's members, of them zhou's relations only, none carrying 复购客
    assert await _drop(stack, {"segment": made["id"], "guides": ["zhou"],
                               "tags_none": ["复购客"]}) == 1
    assert _sends(stack) == [("zhou", (p["u"],))]
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"segment": made["id"],
                                                        "tags_none": ["门店扫码"]}})
    assert status == 200 and body["enrolled"] == 0, body

