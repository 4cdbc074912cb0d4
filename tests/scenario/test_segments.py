"""客户分群 over HTTP: HQ saves a named filter over the tenant's customers in the admin API or
the console, sees how many match now, pages and exports its members, and uses it as the
audience of a 新建群发 (resolved when the drop fires: it reaches exactly who matches then,
through the sandbox) and of a manual SOP enrolment. Bad conditions are refused naming the
field; another tenant's segment is 404. The SOP clock (which segments count days from) is
pinned: nothing here depends on the real time."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from guidebot.db.models import CorpTag, Customer, CustomerTag, Follow, Guide
from guidebot.db.models_commerce import Order
from guidebot.db.models_kf import OptOut
from guidebot.db.models_stats import StatsCustomer
from tests.scenario.test_hq_drops import NOW, TEXT, _customer
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, start_stack


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Any, db_url: str):  # type: ignore[no-untyped-def]
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    stack.runtime.services.sop.clock = lambda: NOW  # segments count days from it too
    yield stack
    await stack.http.close()


async def _tag_ids(stack: Stack) -> dict[str, str]:
    await stack.runtime.services.tags.sync("acme")
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(CorpTag.name, CorpTag.tag_id).where(
            CorpTag.tenant == "acme", CorpTag.deleted.is_(False)))).all()  # type: ignore[attr-defined]
    return {n: i for n, i in rows}


def _order(no: str, customer: str, at: datetime) -> Order:
    return Order(tenant="acme", order_no=no, external_userid=customer, paid_at=at,
                 amount_fen=19900, rule="none", rule_version_id=1, evidence="{}", lines="[]")


async def _seed(stack: Stack) -> dict[str, str]:
    """Five customers (rows, as the customers list tests seed them, with the facts the
    statistics keep of them): wmA (lina, 新客, bought 40 days ago, added yesterday), wmB (lina,
    新客 and 复购客, bought 2 days ago), wmC (zhou of store S02, no tag, added 40 days ago),
    wmD (lost: deleted lina), wmE (zhou, 新客, opted out, added 30 days ago, bought 5 days ago).
    Returns the tag ids by name."""
    tags = await _tag_ids(stack)
    new, old = tags["新客"], tags["复购客"]
    day = timedelta(days=1)
    async with stack.runtime.services.db.write() as s:
        s.add_all([Guide(tenant="acme", userid="lina", store_id="S01"),
                   Guide(tenant="acme", userid="zhou", store_id="S02")])
        s.add_all([Customer(tenant="acme", external_userid=x, name=n, created_at=NOW - d * day)
                   for x, n, d in (("wmA", "=陈思", 1), ("wmB", "王芳", 3), ("wmC", "李娜", 40),
                                   ("wmD", "流失顾客", 20), ("wmE", "退订顾客", 30))])
        s.add_all([
            Follow(tenant="acme", guide="lina", external_userid="wmA", status="active",
                   added_at=NOW - day),
            Follow(tenant="acme", guide="lina", external_userid="wmB", status="active",
                   added_at=NOW - 3 * day),
            Follow(tenant="acme", guide="zhou", external_userid="wmC", status="active",
                   added_at=NOW - 40 * day),
            Follow(tenant="acme", guide="lina", external_userid="wmD",
                   status="deleted_by_customer", added_at=NOW - 20 * day,
                   ended_at=NOW - 5 * day),
            Follow(tenant="acme", guide="zhou", external_userid="wmE", status="active",
                   added_at=NOW - 30 * day),
            CustomerTag(tenant="acme", external_userid="wmA", guide="lina", tag_id=new),
            CustomerTag(tenant="acme", external_userid="wmB", guide="lina", tag_id=new),
            CustomerTag(tenant="acme", external_userid="wmB", guide="lina", tag_id=old),
            CustomerTag(tenant="acme", external_userid="wmE", guide="zhou", tag_id=new),
            OptOut(tenant="acme", external_userid="wmE", msgid="kf-msg-1"),
            _order("SO-1", "wmA", NOW - 40 * day), _order("SO-2", "wmB", NOW - 2 * day),
            _order("SO-3", "wmE", NOW - 5 * day)])
        s.add_all([StatsCustomer(tenant="acme", external_userid=x, first_added_at=NOW - d * day,
                                 following=f, last_paid_at=NOW - p * day if p else None)
                   for x, d, f, p in (("wmA", 1, 1, 40), ("wmB", 3, 1, 2), ("wmC", 40, 1, 0),
                                      ("wmD", 20, 0, 0), ("wmE", 30, 1, 5))])
    return tags


async def _members(stack: Stack, segment_id: int, tenant: str = "acme") -> list[str]:
    seen: list[str] = []
    after = ""
    while True:
        status, body = await stack.admin(f"/segments/{segment_id}/customers?limit=2&after={after}",
                                         tenant=tenant)
        assert status == 200, body
        seen += [c["external_userid"] for c in body["customers"]]
        if body["next"] is None:
            return seen
        after = body["next"]


async def _create(stack: Stack, name: str, **conditions: Any) -> dict[str, Any]:
    status, body = await stack.admin("/segments", method="POST",
                                     json={"name": name, "conditions": conditions})
    assert status == 201, body
    return dict(body)


async def test_conditions_find_exactly_their_customers_counted_and_paged(stack: Stack) -> None:
    tags = await _seed(stack)
    new, old = tags["新客"], tags["复购客"]
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, ["wmA", "wmB", "wmC", "wmD", "wmE"]),
        ({"tags_any": [new]}, ["wmA", "wmB", "wmE"]),
        ({"tags_all": [new, old]}, ["wmB"]),
        ({"tags_any": [new], "tags_none": [old]}, ["wmA", "wmE"]),
        ({"guides": ["lina"]}, ["wmA", "wmB"]),  # wmD's relation with lina ended
        ({"stores": ["S02"]}, ["wmC", "wmE"]),
        ({"status": "lost"}, ["wmD"]),
        ({"status": "opted_out"}, ["wmE"]),
        ({"status": "following", "tags_any": [new]}, ["wmA", "wmB", "wmE"]),
        ({"added_days": 3}, ["wmA"]),  # 3 days, today included: 03-01 to 03-03
        ({"added_days": 4}, ["wmA", "wmB"]),  # wmB arrived on 02-28
        ({"added_from": "2027-02-11", "added_to": "2027-03-01"}, ["wmB", "wmD"]),
        ({"purchased": "yes"}, ["wmA", "wmB", "wmE"]),
        ({"purchased": "no"}, ["wmC", "wmD"]),
        ({"quiet_days": 30}, ["wmA"]),  # bought, but not in the last 30 days
        # the data centre's layers today: new since 02-02, active: paid since 2026-12-04
        ({"layer": "new"}, ["wmA", "wmB"]),
        ({"layer": "active"}, ["wmE"]),  # added 30 days ago (02-01): no longer new
        ({"layer": "dormant"}, ["wmC"]),
        ({"layer": "lost"}, ["wmD"]),
    ]
    for n, (conditions, expected) in enumerate(cases):
        made = await _create(stack, f"分群{n}", **conditions)
        assert made["count"] == len(expected), (conditions, made)
        assert sorted(await _members(stack, made["id"])) == expected, conditions
    status, listed = await stack.admin("/segments")
    assert status == 200 and [s["count"] for s in listed["segments"]] == [
        len(e) for _, e in cases]
    # newest first, as the customers list
    assert await _members(stack, listed["segments"][0]["id"]) == [
        "wmA", "wmB", "wmD", "wmE", "wmC"]


async def test_create_get_update_delete_and_refusals_naming_the_field(stack: Stack) -> None:
    tags = await _seed(stack)
    made = await _create(stack, "新客", tags_any=[tags["新客"]])
    status, got = await stack.admin(f"/segments/{made['id']}")
    assert status == 200 and got["conditions"] == {"tags_any": [tags["新客"]]}, got
    assert got["count"] == 3 and got["operator"] == "api"
    status, changed = await stack.admin(f"/segments/{made['id']}", method="PUT", json={
        "name": "复购客", "conditions": {"tags_any": [tags["复购客"]]}, "operator": "运营小王"})
    assert status == 200 and (changed["name"], changed["count"], changed["operator"]) == (
        "复购客", 1, "运营小王"), changed
    for body, field, detail in (
            ({"name": "x", "conditions": {"tags_any": ["nosuch"]}}, "conditions.tags_any",
             "no_tag"),
            ({"name": "x", "conditions": {"guides": ["nobody"]}}, "conditions.guides",
             "no_guide"),
            ({"name": "x", "conditions": {"stores": ["S99"]}}, "conditions.stores", "no_store"),
            ({"name": "x", "conditions": {"status": "gone"}}, "conditions.status", ""),
            ({"name": "x", "conditions": {"added_from": "2027-02-30"}}, "conditions.added_from",
             "date"),
            ({"name": "x", "conditions": {"added_to": "9999-12-31"}}, "conditions.added_to",
             "date"),
            ({"name": "x", "conditions": {"added_from": "2027-03-02",
                                          "added_to": "2027-03-01"}}, "conditions.added_from",
             "date_order"),
            ({"name": "x", "conditions": {"added_days": 3, "added_from": "2027-03-01"}},
             "conditions.added_days", "added_both"),
            ({"name": "x", "conditions": {"added_days": 0}}, "conditions.added_days", ""),
            ({"name": "x", "conditions": {"purchased": "maybe"}}, "conditions.purchased", ""),
            ({"name": "x", "conditions": {"purchased": "no", "quiet_days": 5}},
             "conditions.quiet_days", "quiet_never"),
            ({"name": "x", "conditions": {"colour": "red"}}, "conditions.colour", ""),
            ({"name": "x", "conditions": {"layer": "vip"}}, "conditions.layer", ""),
            ({"name": "", "conditions": {}}, "name", ""),
            ({"name": "   ", "conditions": {}}, "name", "name")):
        status, refused = await stack.admin("/segments", method="POST", json=body)
        assert status == 400 and refused["field"] == field, (body, refused)
        assert refused["error"].startswith(field)
        # `code` as the API always answered it, the refusal's own code beside it ("": the
        # request's schema refused it, uncoded)
        assert (refused.get("code"), refused.get("detail")) == (
            ("segment.invalid", f"segment.{detail}") if detail else (None, None)), (body, refused)
    status, listed = await stack.admin("/segments")
    assert [s["name"] for s in listed["segments"]] == ["复购客"]
    for path in ("/segments/999", "/segments/999/customers"):
        status, missing = await stack.admin(path)
        assert status == 404 and missing["field"] == "segment_id", missing
    status, refused = await stack.admin(f"/segments/{made['id']}/customers?after=xyz")
    assert status == 400 and refused["field"] == "after", refused
    status, gone = await stack.admin(f"/segments/{made['id']}", method="DELETE")
    assert status == 200 and gone == {"id": made["id"], "deleted": True}
    status, again = await stack.admin(f"/segments/{made['id']}", method="DELETE")
    assert status == 404 and again["field"] == "segment_id"
    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        doc = await resp.json()
    assert "/api/v1/{tenant}/segments/{segment_id}/customers" in doc["paths"]
    assert "Conditions" in str(doc["components"])


async def test_another_tenant_neither_sees_nor_uses_a_segment(stack: Stack) -> None:
    tags = await _seed(stack)
    made = await _create(stack, "新客", tags_any=[tags["新客"]])
    beta = {"tenant": "beta", "token": "beta-admin-token"}
    status, listed = await stack.admin("/segments", **beta)
    assert status == 200 and listed["segments"] == []
    for path, method, body in (
            (f"/segments/{made['id']}", "GET", None),
            (f"/segments/{made['id']}/customers", "GET", None),
            (f"/segments/{made['id']}", "PUT", {"name": "x", "conditions": {}}),
            (f"/segments/{made['id']}", "DELETE", None)):
        status, answer = await stack.admin(path, method=method, json=body, **beta)
        assert status == 404 and answer["field"] == "segment_id", (path, answer)
    status, refused = await stack.admin("/drops", method="POST", json={
        "title": "借用分群", "channel": "guide_task", "message": "drop_double12_warmup",
        "audience": {"segment": made["id"]}, "at": "now"}, **beta)
    assert status == 400 and refused["field"] == "audience.segment", refused
    status, refused = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                        json={"audience": {"segment": made["id"]}}, **beta)
    assert status == 404 and refused["field"] == "audience.segment", refused
    status, still = await stack.admin(f"/segments/{made['id']}")
    assert status == 200 and still["count"] == 3


def _sends(stack: Stack) -> list[tuple[str, tuple[str, ...]]]:
    """The drop message's 群发 made in WeCom: (sender, customers)."""
    return sorted((c["body"]["sender"], tuple(sorted(c["body"]["external_userid"])))
                  for c in stack.calls("externalcontact/add_msg_template", tenant="acme")
                  if TEXT in c["body"]["text"]["content"])


async def _tag(stack: Stack, customer: str, guide: str, name: str) -> None:
    status, body = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                     json={"guide": guide, "add": [name]})
    assert status == 200, body


async def test_a_drop_to_a_segment_reaches_who_matches_when_it_fires(stack: Stack) -> None:
    a = await _customer(stack, "lina", "陈思")
    b = await _customer(stack, "lina", "王芳")
    c = await _customer(stack, "zhou", "李娜")
    await _customer(stack, "zhou", "赵敏")  # never tagged
    for customer, guide in ((a, "lina"), (c, "zhou")):
        await _tag(stack, customer, guide, "新客")
    tags = await _tag_ids(stack)
    made = await _create(stack, "新客群发", tags_any=[tags["新客"]])
    assert made["count"] == 2

    draft = {"title": "分群群发", "channel": "guide_task", "message": "drop_double12_warmup",
             "audience": {"segment": made["id"]}, "at": "now"}
    status, sent = await stack.admin("/drops", method="POST", json=draft)
    assert status == 201 and sent["tasks"] == 2 and sent["drop"]["segment"] == made["id"], sent
    await stack.runtime.services.sop.tick("acme")
    assert _sends(stack) == [("lina", (a,)), ("zhou", (c,))]  # per guide, only the segment

    # a scheduled one reaches who matches when it fires: b tagged after it was made (a and c
    # had their 1/day 群发 already: left out on quota, as any drop leaves them)
    status, later = await stack.admin("/drops", method="POST", json={
        **draft, "title": "晚间分群群发", "at": "2027-03-03T18:00:00+08:00"})
    assert status == 201 and later["tasks"] == 0, later
    await _tag(stack, b, "lina", "新客")
    sop = stack.runtime.services.sop
    sop.clock = lambda: NOW + timedelta(hours=8, minutes=1)
    await sop.singletons("acme")
    await sop.tick("acme")
    assert _sends(stack) == sorted([("lina", (a,)), ("lina", (b,)), ("zhou", (c,))])

    # a drop whose segment is deleted before it fires reaches no one (the next day: quota free)
    status, orphan = await stack.admin("/drops", method="POST", json={
        **draft, "title": "次日分群群发", "at": "2027-03-04T18:00:00+08:00"})
    assert status == 201, orphan
    status, _ = await stack.admin(f"/segments/{made['id']}", method="DELETE")
    assert status == 200
    again = await _create(stack, "重建", tags_any=[tags["新客"]])  # never takes the old id
    assert again["id"] != made["id"] and again["count"] == 3
    sop.clock = lambda: NOW + timedelta(days=1, hours=8, minutes=1)
    await sop.singletons("acme")
    await sop.tick("acme")
    assert len(_sends(stack)) == 3
    status, drops = await stack.admin("/drops")
    assert [d["state"] for d in drops["drops"] if d["id"] == orphan["drop"]["id"]] == ["fired"]

    # a segment with a group drop, or one the tenant does not have: refused naming it
    for audience, channel in (({"segment": again["id"]}, "group_task"),
                              ({"segment": 999}, "guide_task")):
        status, refused = await stack.admin("/drops", method="POST", json={
            **draft, "channel": channel, "audience": audience})
        assert status == 400 and refused["field"] == "audience.segment", refused


async def test_an_enrolment_of_a_segment_enrolls_its_customers(stack: Stack) -> None:
    a = await _customer(stack, "lina", "陈思")
    await _customer(stack, "lina", "王芳")
    c = await _customer(stack, "zhou", "李娜")
    for customer, guide in ((a, "lina"), (c, "zhou")):
        await _tag(stack, customer, guide, "新客")
    tags = await _tag_ids(stack)
    made = await _create(stack, "新客", tags_any=[tags["新客"]])
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"segment": made["id"]}})
    assert status == 200 and body["enrolled"] == 2, body
    assert body["audience"]["segment"] == made["id"]
    status, again = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                      json={"audience": {"segment": made["id"],
                                                         "guides": ["lina"]}})
    assert status == 200 and again["enrolled"] == 0, again  # already enrolled
    status, sops = await stack.admin("/sops")
    (care,) = [s for s in sops["sops"] if s["id"] == "repurchase_care"]
    assert sum(care["enrollments"].values()) == 2, care
    status, missing = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                        json={"audience": {"segment": 999}})
    assert status == 404 and missing["field"] == "audience.segment", missing


def _ids(html: str) -> list[str]:
    return re.findall(r'data-customer="(wm[A-Z])"', html)


async def test_the_console_saves_previews_lists_exports_and_deletes(stack: Stack) -> None:
    tags = await _seed(stack)
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/segments")
        assert status == 200 and "还没有客户分群" in html
        assert 'href="/console/acme/segments"' in html  # the nav entry
        status, html, _ = await console.get("/console/acme/segments/new")
        assert status == 200 and f'<option value="{tags["新客"]}">新客</option>' in html, html
        status, preview, _ = await console.get(
            f"/console/acme/segments/new?preview=1&name=新客&tags_any={tags['新客']}"
            "&status=following")
        assert status == 200 and "当前匹配 3 位客户" in preview, preview
        assert f'<option value="{tags["新客"]}" selected>' in preview
        status, preview, _ = await console.get(
            "/console/acme/segments/new?preview=1&layer=dormant")
        assert status == 200 and "当前匹配 1 位客户" in preview, preview
        assert '<option value="dormant" selected>沉睡</option>' in preview
        form = [("_csrf", csrf_in(html)), ("name", "新客"), ("tags_any", tags["新客"]),
                ("tags_any", tags["复购客"]), ("status", "following"), ("purchased", "yes")]
        status, _, resp = await console.post("/console/acme/segments", form)  # type: ignore[arg-type]
        assert status == 303, resp.headers
        where = resp.headers["Location"]
        assert where.endswith("?saved=1#notice")
        segment_id = int(where.split("/")[-1].split("?")[0])
        status, page, _ = await console.get(where)
        assert status == 200 and "客户分群已保存" in page
        assert 'data-count="3"' in page and _ids(page) == ["wmA", "wmB", "wmE"]
        assert '/console/acme/customers/wmA"' in page
        status, csv_text, resp = await console.get(
            f"/console/acme/segments/{segment_id}?format=csv")
        assert status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff"))))
        assert [(r["external_userid"], r["name"], r["guides"]) for r in rows] == [
            ("wmA", "'=陈思", "lina"), ("wmB", "王芳", "lina"),
            ("wmE", "退订顾客", "zhou")]  # escaped as the customers CSV
        status, listing, _ = await console.get("/console/acme/segments")
        assert re.search(rf'data-segment="{segment_id}".*?data-figure="count" data-count="3"',
                         listing, re.S), listing
        status, edit, _ = await console.get(f"/console/acme/segments/{segment_id}/edit")
        assert status == 200 and 'value="新客"' in edit
        status, _, resp = await console.post(f"/console/acme/segments/{segment_id}", [  # type: ignore[arg-type]
            ("_csrf", csrf_in(edit)), ("name", "流失"), ("status", "lost")])
        assert status == 303
        status, page, _ = await console.get(resp.headers["Location"])
        assert _ids(page) == ["wmD"]
        status, refused, _ = await console.post("/console/acme/segments", [  # type: ignore[arg-type]
            ("_csrf", csrf_in(edit)), ("name", "坏"), ("added_days", "abc")])
        assert status == 400 and "「最近 N 天内添加（含今天）」须为 1 到 3650" in refused, refused
        assert "conditions." not in refused

        # the 新建群发 form and the SOP enrolment offer it as the audience
        status, content, _ = await console.get("/console/acme/content")
        assert f'<option value="{segment_id}">流失</option>' in content
        status, sop_page, _ = await console.get("/console/acme/sops/repurchase_care")
        assert f'<option value="{segment_id}">流失</option>' in sop_page

        status, _, resp = await console.post(f"/console/acme/segments/{segment_id}/delete",
                                             {"_csrf": csrf_in(page)})
        assert status == 303 and resp.headers["Location"].endswith("#notice")
        status, listing, _ = await console.get(resp.headers["Location"])
        assert "客户分群「流失」已删除" in listing and "还没有客户分群" in listing
        status, _, _ = await console.get(f"/console/acme/segments/{segment_id}")
        assert status == 404
    finally:
        await console.close()


async def test_the_console_sends_and_enrolls_a_segment(stack: Stack) -> None:
    a = await _customer(stack, "lina", "陈思")
    await _customer(stack, "lina", "王芳")
    await _tag(stack, a, "lina", "新客")
    tags = await _tag_ids(stack)
    made = await _create(stack, "新客", tags_any=[tags["新客"]])
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/content")
        key = re.search(r'name="key" value="([^"]+-new)"', html)
        assert key
        form = {"_csrf": csrf_in(html), "key": key.group(1), "title": "控制台分群群发",
                "channel": "guide_task", "message": "drop_double12_warmup", "material": "",
                "guides": "", "stores": "", "tags_any": "", "tags_all": "", "tags_none": "",
                "group_names": "", "segment": str(made["id"]), "when": "now", "at": ""}
        status, _, resp = await console.post("/console/acme/drops", form)
        assert status == 303 and "tasks=1" in resp.headers["Location"], resp.headers
        await stack.runtime.services.sop.tick("acme")
        assert _sends(stack) == [("lina", (a,))]

        status, page, _ = await console.get("/console/acme/sops/repurchase_care")
        status, _, resp = await console.post("/console/acme/sops/repurchase_care/enroll", {
            "_csrf": csrf_in(page), "tags": "", "guides": "", "customers": "",
            "segment": str(made["id"])})
        assert status == 303 and "enrolled=1" in resp.headers["Location"], resp.headers
    finally:
        await console.close()


async def _wecom_deletes(stack: Stack, tag_id: str) -> None:
    """An admin deletes the tag in the WeCom console: WeCom takes it off every customer and
    calls back change_external_tag, and guidebot's library sync marks it deleted and takes
    it off the customers in the same transaction."""
    await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_tag", "Id": tag_id, "TagType": "tag", "ChangeType": "delete"})
    await stack.runtime.drain()


async def _carriers(stack: Stack, tag_id: str) -> list[str]:
    async with stack.runtime.services.db.read() as s:
        return sorted((await s.execute(select(CustomerTag.external_userid).where(
            CustomerTag.tenant == "acme", CustomerTag.tag_id == tag_id))).scalars())


async def test_a_deleted_tag_is_carried_by_no_one_and_the_segment_says_so(
        stack: Stack) -> None:
    """A segment naming a corp tag deleted since (in WeCom, or through 标签管理): the tag is
    carried by no one (the sync takes it off the customers), so tags_any and tags_all naming it
    match accordingly and tags_none ignores it, in the count, the members and the CSV; the API
    and the console name the deleted tag (标签已删除), and HQ edits it out."""
    tags = await _seed(stack)
    new, old = tags["新客"], tags["复购客"]
    status, made = await stack.admin("/tags", method="POST", json={
        "group_name": "会员等级", "tags": [{"name": "金卡"}, {"name": "银卡"}]})
    assert status == 201, made
    gold, silver = (t["id"] for t in made["tags"])
    async with stack.runtime.services.db.write() as s:
        s.add_all([CustomerTag(tenant="acme", external_userid=x, guide=g, tag_id=gold)
                   for x, g in (("wmA", "lina"), ("wmC", "zhou"))])
    cases: list[tuple[dict[str, Any], list[str], list[str]]] = [  # before, after the delete
        ({"tags_any": [gold]}, ["wmA", "wmC"], []),
        ({"tags_any": [gold, old]}, ["wmA", "wmB", "wmC"], ["wmB"]),
        ({"tags_all": [new, gold]}, ["wmA"], []),
        ({"tags_none": [gold]}, ["wmB", "wmD", "wmE"], ["wmA", "wmB", "wmC", "wmD", "wmE"]),
        ({"tags_any": [new], "tags_none": [gold, old]}, ["wmE"], ["wmA", "wmE"]),
    ]
    made_ids = []
    for n, (conditions, before, _) in enumerate(cases):
        segment = await _create(stack, f"会员{n}", **conditions)
        assert segment["count"] == len(before) and segment["deleted_tags"] == [], segment
        assert sorted(await _members(stack, segment["id"])) == before, conditions
        made_ids.append(segment["id"])

    await _wecom_deletes(stack, gold)
    assert await _carriers(stack, gold) == []  # off the customers with the sync
    for segment_id, (conditions, _, after) in zip(made_ids, cases, strict=True):
        status, got = await stack.admin(f"/segments/{segment_id}")
        assert status == 200 and got["count"] == len(after), (conditions, got)
        assert got["deleted_tags"] == [{"id": gold, "name": "金卡"}], got
        assert sorted(await _members(stack, segment_id)) == after, conditions
    status, found = await stack.admin("/customers?tag=金卡")  # the search by tag name too
    assert status == 200 and found["customers"] == [], found
    status, listed = await stack.admin("/segments")
    assert [s["deleted_tags"] for s in listed["segments"]] == [
        [{"id": gold, "name": "金卡"}]] * len(cases)

    # deleted through 标签管理 (del_corp_tag) the same; an update naming a deleted tag is
    # refused naming it, one leaving it out is saved and names none
    both = await _create(stack, "银卡", tags_any=[silver, old])
    status, body = await stack.admin(f"/tags/{silver}", method="DELETE")
    assert status == 200, body
    status, got = await stack.admin(f"/segments/{both['id']}")
    assert (got["count"], got["deleted_tags"]) == (1, [{"id": silver, "name": "银卡"}]), got
    status, refused = await stack.admin(f"/segments/{made_ids[1]}", method="PUT", json={
        "name": "会员1", "conditions": {"tags_any": [gold, old]}})
    assert status == 400 and refused["field"] == "conditions.tags_any", refused
    assert "金卡" in refused["error"] and "deleted" in refused["error"], refused
    status, changed = await stack.admin(f"/segments/{made_ids[1]}", method="PUT", json={
        "name": "会员1", "conditions": {"tags_any": [old]}})
    assert status == 200 and (changed["count"], changed["deleted_tags"]) == (1, []), changed

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        segment_id = made_ids[4]  # 新客, none of 金卡 (deleted) and 复购客
        status, page, _ = await console.get(f"/console/acme/segments/{segment_id}")
        assert status == 200 and _ids(page) == ["wmA", "wmE"], page
        assert f'<span data-deleted-tag="{gold}">金卡 <span class="chip">标签已删除</span>' \
            in page, page
        assert 'id="deleted-tags"' in page and "金卡 已在企业微信中删除" in page
        status, csv_text, _ = await console.get(f"/console/acme/segments/{segment_id}?format=csv")
        rows = list(csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff"))))
        assert [r["external_userid"] for r in rows] == ["wmA", "wmE"]
        status, listing, _ = await console.get("/console/acme/segments")
        assert re.search(rf'data-segment="{segment_id}".*?data-deleted-tag="{gold}"', listing,
                         re.S), listing
        status, edit, _ = await console.get(f"/console/acme/segments/{segment_id}/edit")
        assert status == 200 and 'id="deleted-tags"' in edit and "金卡" in edit, edit
        assert f'value="{gold}"' not in edit  # not offered: saving the form leaves it out
        status, _, resp = await console.post(f"/console/acme/segments/{segment_id}", [  # type: ignore[arg-type]
            ("_csrf", csrf_in(edit)), ("name", "会员4"), ("tags_any", new),
            ("tags_none", old)])
        assert status == 303, resp.headers
        status, page, _ = await console.get(resp.headers["Location"])
        assert _ids(page) == ["wmA", "wmE"] and 'id="deleted-tags"' not in page, page
        assert "data-deleted-tag" not in page
    finally:
        await console.close()


async def test_a_drop_and_an_enrolment_of_a_segment_naming_a_deleted_tag(
        stack: Stack) -> None:
    """The 群发 audience and the SOP enrolment of a segment follow the same semantics: a tag
    deleted in WeCom is carried by no one."""
    a = await _customer(stack, "lina", "陈思")
    b = await _customer(stack, "lina", "王芳")
    c = await _customer(stack, "zhou", "李娜")
    status, made = await stack.admin("/tags", method="POST", json={
        "group_name": "会员等级", "tags": [{"name": "金卡"}]})
    assert status == 201, made
    gold = made["tags"][0]["id"]
    await _tag(stack, a, "lina", "新客")
    for customer, guide in ((b, "lina"), (c, "zhou")):
        await _tag(stack, customer, guide, "金卡")
    tags = await _tag_ids(stack)
    any_of = await _create(stack, "新客或金卡", tags_any=[tags["新客"], gold])
    none_of = await _create(stack, "非金卡", tags_none=[gold], guides=["zhou"])
    assert (any_of["count"], none_of["count"]) == (3, 0)
    await _wecom_deletes(stack, gold)
    assert await _carriers(stack, gold) == []

    status, sent = await stack.admin("/drops", method="POST", json={
        "title": "分群群发", "channel": "guide_task", "message": "drop_double12_warmup",
        "audience": {"segment": any_of["id"]}, "at": "now"})
    assert status == 201 and sent["tasks"] == 1, sent
    await stack.runtime.services.sop.tick("acme")
    assert _sends(stack) == [("lina", (a,))]
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"segment": none_of["id"]}})
    assert status == 200 and body["enrolled"] == 1, body  # c: its 金卡 is gone
