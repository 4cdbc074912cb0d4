"""A 新建群发's and an SOP enrolment's audience, filtered in the database: tags by name over all
of a customer's guides (any of, all of, none of), the relation's guide, opted-out customers
left out, a customer with two guides reached once (through their exclusive guide, else the
relation they began last, among the admitted ones), the per-customer 群发 quota
leaving customers out of a drop (not of an enrolment), a segment with the audience's own
lists; a drop reads its audience in one statement, fetched a part at a time (one relation a
part here, so the parts cross from guide to guide); tables never analysed (no statistics, as
right after a bulk import) are read without nested loops on PostgreSQL. The SOP clock is
pinned: nothing here depends on the real time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_kf import OptOut
from guidebot.db.models_sop import SopEnrollment
from guidebot.db.repo import audiences, sop_bulk
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
    # x once, through lina, their exclusive guide (tagged by lina only: tags are the
    # customer's), not y (复购客), z (opted out) or w (no tag); v left out on quota
    assert tasks == 2
    assert _sends(stack) == sorted([("lina", (p["v"],)), ("lina", (p["x"],)),
                                    ("zhou", (p["u"],))])
    status, body = await stack.admin("/tasks")
    assert status == 200, body
    made = sorted((t["guide"], t["recipients"], t["detail"].get("over_quota", 0),
                   t["detail"].get("duplicates", 0)) for t in body["tasks"]
                  if t["kind"] == "guide_task" and t["source"].startswith("drop:"))
    # x's relation with zhou left out: counted on lina's task, through whom x is reached
    assert made == [("lina", 1, 0, 0), ("lina", 1, 1, 1), ("zhou", 1, 0, 0)], made


async def test_an_enrolment_admits_each_customer_once_without_the_quota(stack: Stack) -> None:
    p = await _people(stack)
    audience = {"tags_any": ["新客"], "tags_none": ["复购客"]}
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": audience})
    assert status == 200 and body["enrolled"] == 3, body  # x once, through lina (bound)
    for narrower in ({"tags_all": ["新客", "门店扫码"], "guides": ["zhou"]},  # u@zhou
                     {"tags_any": ["新客"], "guides": ["zhou"]}):  # x enrolled through lina
        status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                         json={"audience": narrower})
        assert status == 200 and body["enrolled"] == 0, body
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopEnrollment.guide, SopEnrollment.external_userid)
                                .where(SopEnrollment.tenant == "acme",
                                       SopEnrollment.sop_id == "repurchase_care"))).all()
    assert sorted(map(tuple, rows)) == sorted([("lina", p["x"]), ("lina", p["v"]),
                                               ("zhou", p["u"])])


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



TABLES = ("follows", "customer_tags", "corp_tags", "opt_outs", "guides", "customers")


async def _statistics(s: AsyncSession, postgres: bool) -> int:
    """Statistics the planner has of the audience's tables (PostgreSQL: column statistics;
    SQLite: the table ANALYZE writes)."""
    if postgres:
        return int((await s.execute(text(
            "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = ANY(:t)"), {"t": list(TABLES)})).scalar_one())
    return int((await s.execute(text(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"))).scalar_one())


async def _plan(s: AsyncSession, stmt: object) -> str:
    sql = stmt.compile(dialect=postgresql.dialect(),  # type: ignore[attr-defined]
                       compile_kwargs={"literal_binds": True})
    return "\n".join((await s.execute(text(f"EXPLAIN {sql}"))).scalars())


async def test_never_analysed_tables_give_the_same_audience_without_nested_loops(
        stack: Stack, db_url: str) -> None:
    p = await _people(stack)
    postgres = db_url.startswith("postgresql")
    db = stack.runtime.services.db
    async with db.read() as s:
        assert await _statistics(s, postgres) == 0  # as right after a bulk import
    assert await _drop(stack, {"tags_any": ["新客"], "tags_none": ["复购客"]}) == 2
    assert _sends(stack) == sorted([("lina", tuple(sorted([p["v"], p["x"]]))),
                                    ("zhou", (p["u"],))])
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"tags_any": ["门店扫码"]}})
    assert status == 200 and body["enrolled"] == 2, body  # v@lina, u@zhou
    async with db.read() as s:
        assert await _statistics(s, postgres) == 0  # nothing analysed them meanwhile
        if not postgres:
            return
        wanted = audiences.AudienceFilter(tags_any=["新客"], tags_none=["复购客"])
        once = audiences.Once(bound_after=NOW - timedelta(days=30))
        async with audiences.hash_joins(s):
            for stmt in (audiences.admitted_stmt(tenant="acme", audience=wanted),
                         audiences.admitted_stmt(tenant="acme", audience=wanted, once=once),
                         audiences.enrollment_rows(
                             tenant="acme", audience=wanted, sop_id="x", version=1,
                             first_step=0, trigger_at=NOW, next_at=None, cycle=0, now=NOW),
                         sop_bulk.audience_enrollments(
                             tenant="acme", sop_id="x", version=1, first_step=0,
                             trigger_at=NOW, next_at=None, audience=wanted, once=once)):
                plan = await _plan(s, stmt)
                assert "Nested Loop" not in plan and "Hash" in plan, plan
        # the transaction's other statements are planned as before
        assert (await s.execute(text("SHOW enable_nestloop"))).scalar_one() == "on"
