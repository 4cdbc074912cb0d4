"""预打标签: HQ gives customers it knows by unionid corp tags ahead (`POST /pretags`); when one
adds a guide (an encrypted add_external_contact callback from the WeCom sandbox, whose
externalcontact/get answers the unionid), the tags are marked through that guide
(`externalcontact/mark_tag`), mirrored, and raise the SOP `tag_added` triggers; a customer
already following a guide is marked at import."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from guidebot import jobs
from guidebot.db.migrate import upgrade_async
from guidebot.db.models import OutboxItem
from guidebot.db.models_pretags import PreTag
from guidebot.db.repo import outbox as outbox_repo
from guidebot.db.repo import pretags as pretags_repo
from guidebot.db.repo import relation_tags, sop_plan
from guidebot.db.types import utcnow
from tests.support.console import Console, csrf_in, figure
from tests.support.pretags import upload as _upload
from tests.support.stack import Stack, library_copy, start_stack

SOP = """
id = "beauty"
title = "美妆兴趣跟进"
enabled = true

[trigger]
on = "tag_added"
tags_any = ["美妆兴趣"]

[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_winback_miss_you"
"""


async def _add(stack: Stack, guide: str, unionid: str, tenant: str = "acme") -> str:
    added = await stack.sandbox.simulate_add_contact(tenant, userid=guide, name="张晓雨",
                                                     unionid=unionid)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _tag_id(stack: Stack, name: str) -> str:
    return (await stack.runtime.services.tags.resolve("acme", [name]))[0]


def _marks(stack: Stack, customer: str, tenant: str = "acme") -> list[tuple[str, tuple[str, ...]]]:
    return [(c["body"]["userid"], tuple(c["body"].get("add_tag") or ()))
            for c in stack.calls("externalcontact/mark_tag", tenant=tenant)
            if c["errcode"] == 0 and c["body"]["external_userid"] == customer]


def _sandbox_tags(stack: Stack, customer: str, guide: str) -> set[str]:
    state = stack.sandbox.state("acme")
    names = {t["id"]: t["name"] for g in state["tag_groups"] for t in g["tag"]}
    return {names.get(t, t) for t in stack.sandbox.tenant("acme").follow(guide, customer).tag_ids}


def _counts(page: dict[str, Any]) -> dict[str, int]:
    return {k: page[k] for k in ("pending", "marking", "failed", "applied", "tag_deleted")}


async def _rows(stack: Stack) -> list[PreTag]:
    async with stack.runtime.services.db.read() as s:
        return list((await s.execute(select(PreTag).order_by(
            PreTag.tenant, PreTag.unionid, PreTag.tag_id))).scalars())


async def test_an_imported_customer_is_tagged_when_they_add_a_guide(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    library = library_copy(tmp_path, {"sops/beauty.toml": SOP})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    try:
        care = await _tag_id(stack, "护肤兴趣")
        status, body = await stack.admin("/pretags", method="POST", json={
            "key": "crm-1", "lines": [{"unionid": "oUNION-A", "tags": ["美妆兴趣", care]},
                                      {"unionid": "oUNION-B", "tags": ["护肤兴趣"]}]})
        assert status == 201, body
        assert (body["lines"], body["stored"], body["applied"]) == (2, 3, 0)
        again = await stack.admin("/pretags", method="POST", json={
            "key": "crm-1", "lines": [{"unionid": "oUNION-A", "tags": ["美妆兴趣", care]},
                                      {"unionid": "oUNION-B", "tags": ["护肤兴趣"]}]})
        assert again == (200, body)  # the same key and body: nothing more
        status, page = await stack.admin("/pretags?status=pending")
        assert _counts(page) == {"pending": 3, "marking": 0, "failed": 0, "applied": 0,
                                 "tag_deleted": 0}
        assert {i["status"] for i in page["items"]} == {"pending"}
        assert sorted((i["unionid"], i["tag"]) for i in page["items"]) == [
            ("oUNION-A", "护肤兴趣"), ("oUNION-A", "美妆兴趣"), ("oUNION-B", "护肤兴趣")]
        seen, after = [], ""
        while after is not None:  # a page of one: every pre-tag once
            status, one = await stack.admin(f"/pretags?limit=1&after={after}")
            seen += [(i["unionid"], i["tag"]) for i in one["items"]]
            after = one["next"]
        assert sorted(seen) == sorted((i["unionid"], i["tag"]) for i in page["items"])

        customer = await _add(stack, "lina", "oUNION-A")
        beauty = await _tag_id(stack, "美妆兴趣")
        assert sorted(_marks(stack, customer)) == sorted([("lina", (beauty,)),
                                                          ("lina", (care,))])
        assert {"美妆兴趣", "护肤兴趣"} <= _sandbox_tags(stack, customer, "lina")
        async with stack.runtime.services.db.read() as s:
            mirrored = await relation_tags.relation_tag_ids(
                s, tenant="acme", external_userid=customer, guide="lina")
            enrolled = await sop_plan.find_enrollment(s, tenant="acme", sop_id="beauty",
                                                      external_userid=customer, guide="lina")
        assert {beauty, care} <= mirrored
        assert enrolled is not None and enrolled.status == "active"
        applied = [r for r in await _rows(stack) if r.unionid == "oUNION-A"]
        assert [(r.guide, r.external_userid) for r in applied] == [("lina", customer)] * 2
        assert all(r.applied_at is not None for r in applied)
        status, page = await stack.admin("/pretags?status=applied")
        assert [(i["unionid"], i["status"], i["error"]) for i in page["items"]] == [
            ("oUNION-A", "applied", None)] * 2

        # a second guide added later: nothing more is marked (once per customer and tag)
        await stack.sandbox.simulate_add_contact("acme", userid="zhaolei",
                                                 external_userid=customer, unionid="oUNION-A")
        await stack.runtime.drain()
        assert len(_marks(stack, customer)) == 2
        status, page = await stack.admin("/pretags")
        assert (page["pending"], page["applied"]) == (1, 2)
        status, other = await stack.admin("/pretags", method="POST", json={
            "lines": [{"unionid": "oUNION-C", "tags": ["美妆兴趣"]}]})
        status, one = await stack.admin(f"/pretags?import_id={body['import_id']}")
        assert (one["pending"], one["applied"], len(one["items"])) == (1, 2, 3)
        status, one = await stack.admin(f"/pretags?import_id={other['import_id']}")
        assert (one["pending"], one["applied"], len(one["items"])) == (1, 0, 1)
        assert await stack.admin("/pretags/oUNION-C", method="DELETE") == (200, {"deleted": 1})
        assert await stack.admin("/pretags/oUNION-B", method="DELETE") == (200, {"deleted": 1})
        assert [r.unionid for r in await _rows(stack)] == ["oUNION-A", "oUNION-A"]
    finally:
        await stack.http.close()


async def test_a_customer_already_following_is_tagged_at_import(stack: Stack) -> None:
    customer = await _add(stack, "lina", "oUNION-OLD")
    assert _marks(stack, customer) == []
    status, body = await stack.admin("/pretags", method="POST", json={
        "lines": [{"unionid": "oUNION-OLD", "tags": ["护肤兴趣"]}]})
    assert status == 201, body
    assert (body["applied"], body["marking"], body["failed"]) == (1, 0, 0)
    assert _marks(stack, customer) == [("lina", (await _tag_id(stack, "护肤兴趣"),))]
    assert "护肤兴趣" in _sandbox_tags(stack, customer, "lina")
    [row] = await _rows(stack)
    assert (row.guide, row.external_userid) == ("lina", customer) and row.applied_at


async def test_an_import_marks_a_bounded_number_and_the_job_marks_the_rest(
        stack: Stack) -> None:
    """An import marks at most `import_marks` tags itself (the request stays short with
    thousands of known customers); the per-minute job marks the rest, once."""
    first = await _add(stack, "lina", "oUNION-P1")
    second = await _add(stack, "wang", "oUNION-P2")
    stack.runtime.services.pretags.import_marks = 1
    status, body = await stack.admin("/pretags", method="POST", json={
        "lines": [{"unionid": "oUNION-P1", "tags": ["护肤兴趣"]},
                  {"unionid": "oUNION-P2", "tags": ["护肤兴趣"]}]})
    assert status == 201 and body["applied"] == 1, body
    skin = await _tag_id(stack, "护肤兴趣")
    assert _marks(stack, first) == [("lina", (skin,))] and _marks(stack, second) == []
    status, page = await stack.admin("/pretags")
    assert (page["pending"], page["applied"]) == (1, 1), page

    await jobs.run_pretags(stack.runtime.services, "acme")
    assert _marks(stack, second) == [("wang", (skin,))]
    status, page = await stack.admin("/pretags")
    assert (page["pending"], page["applied"]) == (0, 2), page
    await jobs.run_pretags(stack.runtime.services, "acme")  # nothing left: nothing more
    assert len(_marks(stack, first)) == len(_marks(stack, second)) == 1


async def test_a_binding_past_its_validity_does_not_choose_the_guide(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """At import, the guide is the customer's exclusive guide only while their binding is
    valid (binding_validity_days, as attribution and the audiences rule): lina bound the
    customer 40 days ago and wang added them 35 days ago (within lina's protection), so with
    30 days of validity no binding is in force and the relation begun last, wang's, marks."""
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=(
        "[tenants.acme.commission]\nbinding_validity_days = 30\n"))
    try:
        now = int(time.time())
        added = await stack.sandbox.simulate_add_contact(
            "acme", userid="lina", name="张晓雨", unionid="oUNION-OLD",
            create_time=now - 40 * 86_400)
        customer = str(added["external_userid"])
        await stack.runtime.drain()
        await stack.sandbox.simulate_add_contact(
            "acme", userid="wang", external_userid=customer, unionid="oUNION-OLD",
            create_time=now - 35 * 86_400)
        await stack.runtime.drain()
        status, found = await stack.admin(f"/customers/{customer}")
        assert status == 200 and found["exclusive_guide"] is None, found
        assert [b["guide"] for b in found["bindings"] if b["ended_at"] is None] == ["lina"]
        status, body = await stack.admin("/pretags", method="POST", json={
            "lines": [{"unionid": "oUNION-OLD", "tags": ["护肤兴趣"]}]})
        assert status == 201 and body["applied"] == 1, body
        assert _marks(stack, customer) == [("wang", (await _tag_id(stack, "护肤兴趣"),))]
    finally:
        await stack.http.close()


async def test_a_bad_line_refuses_the_request_and_stores_nothing(stack: Stack) -> None:
    status, body = await stack.admin("/pretags", method="POST", json={"lines": [
        {"unionid": "oUNION-A", "tags": ["护肤兴趣"]}, {"unionid": "", "tags": ["护肤兴趣"]}]})
    assert status == 400 and body["field"] == "lines.1.unionid", body
    status, body = await stack.admin("/pretags", method="POST", json={"lines": [
        {"unionid": "oUNION-A", "tags": ["护肤兴趣"]},
        {"unionid": "oUNION-B", "tags": ["没有这个标签"]}]})
    assert status == 400 and body["field"] == "lines.1.tags", body
    assert "没有这个标签" in body["reason"]
    assert await _rows(stack) == []


async def test_another_tenant_neither_sees_nor_applies_them(stack: Stack) -> None:
    status, body = await stack.admin("/pretags", tenant="beta", method="POST", json={
        "lines": [{"unionid": "oUNION-X", "tags": ["护肤兴趣"]}]})
    assert status == 201, body
    status, page = await stack.admin("/pretags")
    assert (status, page["items"], page["pending"]) == (200, [], 0)
    status, _ = await stack.admin("/pretags", tenant="beta", token="acme-admin-token")
    assert status in (401, 403)
    customer = await _add(stack, "lina", "oUNION-X")  # acme's customer with that unionid
    assert _marks(stack, customer) == []
    assert await stack.admin("/pretags/oUNION-X", method="DELETE") == (200, {"deleted": 0})
    [row] = await _rows(stack)
    assert (row.tenant, row.applied_at) == ("beta", None)


async def test_the_console_uploads_a_csv_and_shows_the_counts(stack: Stack) -> None:
    following = await _add(stack, "lina", "oUNION-OLD")
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/tags")
        assert status == 200 and figure(html, "pretags-pending") == "0"
        csrf = csrf_in(html)
        status, page, _ = await _upload(console, csrf, "unionid,tags\noUNION-A,护肤兴趣\n"
                                                       "bad id!,护肤兴趣\n")
        assert status == 400 and "第 3 行无法读取" in page, page
        status, page, _ = await _upload(console, csrf, "oUNION-A,护肤兴趣\noUNION-B,无此标签\n")
        assert status == 400 and "第 2 行：标签库中没有这些标签：无此标签。" in page, page
        many = "".join(f"oUNION-{n:07d},护肤兴趣\n" for n in range(60_000))  # > 1 MiB
        status, page, _ = await _upload(console, csrf, many)
        assert status == 400 and "一次最多导入 10000 行。" in page, page
        status, page, _ = await _upload(console, csrf, many * 2)  # > 2 MB
        assert status == 400 and "文件太大：最多 2 MB。" in page, page
        assert await _rows(stack) == []

        csv = "\ufeffunionid,tags\noUNION-A,护肤兴趣|美妆兴趣\n\noUNION-OLD,护肤兴趣\n"
        status, _, location = await _upload(console, csrf, csv)
        assert status == 303, location
        status, html, _ = await console.get(location)
        assert "预打标签已导入：新增 3 条，立即打上 1 条。" in html, html
        assert (figure(html, "pretags-pending"), figure(html, "pretags-marking"),
                figure(html, "pretags-failed"), figure(html, "pretags-applied"),
                figure(html, "pretags-tag-deleted")) == ("2", "0", "0", "1", "0")
        assert _marks(stack, following) == [("lina", (await _tag_id(stack, "护肤兴趣"),))]
    finally:
        await console.close()


async def _refuse_marks(stack: Stack, errcode: int, times: int) -> None:
    """The sandbox answers the next `times` mark_tag calls with `errcode`."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/mark_tag", "errcode": errcode,
            "times": times}) as resp:
        assert resp.status == 200, await resp.text()


async def _outbox_row(stack: Stack, customer: str, tag_id: str) -> OutboxItem:
    async with stack.runtime.services.db.read() as s:
        row = await outbox_repo.get_by_key(s, tenant="acme", key=f"pretag:{customer}:{tag_id}")
    assert row is not None
    return row


async def test_a_mark_waiting_for_a_retry_is_marking_until_wecom_accepts_it(
        stack: Stack) -> None:
    """WeCom refuses the mark for now (rate limited past the client's backoff): the outbox
    retries it later, and until then the pre-tag is being marked, not applied; the job does
    not mark it again; the outbox's retry applies it."""
    customer = await _add(stack, "lina", "oUNION-R")
    skin = await _tag_id(stack, "护肤兴趣")
    await _refuse_marks(stack, 45009, times=3)  # every try of the client's backoff
    status, body = await stack.admin("/pretags", method="POST", json={
        "lines": [{"unionid": "oUNION-R", "tags": ["护肤兴趣"]}]})
    assert status == 201, body
    assert (body["applied"], body["marking"], body["failed"]) == (0, 1, 0)
    status, page = await stack.admin("/pretags")
    assert _counts(page) == {"pending": 0, "marking": 1, "failed": 0, "applied": 0,
                             "tag_deleted": 0}
    [item] = page["items"]
    assert (item["status"], item["applied_at"], item["guide"]) == ("marking", None, "lina")
    assert "errcode=45009" in item["error"]
    assert _marks(stack, customer) == [] and "护肤兴趣" not in _sandbox_tags(stack, customer,
                                                                          "lina")
    status, page = await stack.admin("/pretags?status=marking")
    assert [i["unionid"] for i in page["items"]] == ["oUNION-R"]
    tries = len(stack.calls("externalcontact/mark_tag"))
    await jobs.run_pretags(stack.runtime.services, "acme")  # the outbox's, not the job's
    assert len(stack.calls("externalcontact/mark_tag")) == tries
    assert await stack.admin("/pretags/oUNION-R", method="DELETE") == (200, {"deleted": 0})

    row = await _outbox_row(stack, customer, skin)
    assert row.status == "failed"
    async with stack.runtime.services.db.write() as s:  # its retry's time has come
        await s.execute(update(OutboxItem).where(OutboxItem.id == row.id).values(
            due_at=utcnow()))
    services = stack.runtime.services
    assert await services.outbox.retry_due(services.calls) == 1
    assert _marks(stack, customer) == [("lina", (skin,))]
    status, page = await stack.admin("/pretags")
    assert _counts(page) == {"pending": 0, "marking": 0, "failed": 0, "applied": 1,
                             "tag_deleted": 0}
    [item] = page["items"]
    assert (item["status"], item["error"], item["guide"]) == ("applied", None, "lina")
    assert item["applied_at"] and item["external_userid"] == customer


async def test_a_dead_mark_is_failed_until_hq_retries_it_in_the_outbox(stack: Stack) -> None:
    """WeCom refuses the mark for good: the outbox row is dead-lettered and the pre-tag shows
    failed with the row's error (console and API); HQ's retry in the console's outbox puts
    it back to being marked, and the outbox's retry applies it."""
    customer = await _add(stack, "lina", "oUNION-F")
    skin = await _tag_id(stack, "护肤兴趣")
    await _refuse_marks(stack, 40068, times=1)
    status, body = await stack.admin("/pretags", method="POST", json={
        "lines": [{"unionid": "oUNION-F", "tags": ["护肤兴趣"]}]})
    assert status == 201, body
    assert (body["applied"], body["marking"], body["failed"]) == (0, 0, 1)
    status, page = await stack.admin("/pretags?status=failed")
    assert page["failed"] == 1 and page["applied"] == 0
    [item] = page["items"]
    assert item["status"] == "failed" and "errcode=40068" in item["error"]
    row = await _outbox_row(stack, customer, skin)
    assert row.status == "dead"

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/tags")
        assert (figure(html, "pretags-marking"), figure(html, "pretags-failed"),
                figure(html, "pretags-applied")) == ("0", "1", "0")
        assert "标记失败" in html
        status, _, _ = await console.post(f"/console/acme/outbox/{row.id}/retry",
                                          {"_csrf": csrf_in(html)})
        assert status == 303
        status, page = await stack.admin("/pretags")
        assert (page["marking"], page["failed"], page["applied"]) == (1, 0, 0)
        services = stack.runtime.services
        assert await services.outbox.retry_due(services.calls) == 1
        assert _marks(stack, customer) == [("lina", (skin,))]
        assert "护肤兴趣" in _sandbox_tags(stack, customer, "lina")
        status, html, _ = await console.get("/console/acme/tags")
        assert (figure(html, "pretags-marking"), figure(html, "pretags-failed"),
                figure(html, "pretags-applied")) == ("0", "0", "1")
    finally:
        await console.close()
    [row_after] = await _rows(stack)
    assert row_after.applied_at is not None and row_after.guide == "lina"


async def test_a_pretag_of_a_deleted_tag_is_counted_as_tag_deleted(stack: Stack) -> None:
    """A tag deleted from the library after the import: its pre-tags show `tag_deleted`, not
    pending, are never marked, and do not keep the add's probe for pre-tags alive."""
    status, made = await stack.admin("/tags", method="POST", json={
        "group_name": "会员等级", "tags": [{"name": "金卡"}]})
    assert status == 201, made
    gold = made["tags"][0]["id"]
    status, body = await stack.admin("/pretags", method="POST", json={"lines": [
        {"unionid": "oUNION-D", "tags": ["金卡", "护肤兴趣"]},
        {"unionid": "oUNION-E", "tags": ["金卡"]}]})
    assert status == 201 and body["stored"] == 3, body
    status, page = await stack.admin("/pretags")
    assert (page["pending"], page["tag_deleted"]) == (3, 0)

    status, gone = await stack.admin(f"/tags/{gold}", method="DELETE")
    assert status == 200, gone
    status, page = await stack.admin("/pretags")
    assert _counts(page) == {"pending": 1, "marking": 0, "failed": 0, "applied": 0,
                             "tag_deleted": 2}
    assert page["tags_unknown"] == 2  # the count's earlier name is still answered
    status, page = await stack.admin("/pretags?status=tag_deleted")
    assert [(i["unionid"], i["tag_id"], i["tag"], i["status"]) for i in page["items"]] == [
        ("oUNION-D", gold, None, "tag_deleted"), ("oUNION-E", gold, None, "tag_deleted")]
    status, page = await stack.admin("/pretags?status=pending")
    assert [(i["unionid"], i["tag"]) for i in page["items"]] == [("oUNION-D", "护肤兴趣")]

    async with stack.runtime.services.db.read() as s:
        assert await pretags_repo.any_pending(s, tenant="acme")
    assert await stack.admin("/pretags/oUNION-D", method="DELETE") == (200, {"deleted": 2})
    async with stack.runtime.services.db.read() as s:  # only a deleted tag's pre-tag is left
        assert not await pretags_repo.any_pending(s, tenant="acme")

    customer = await _add(stack, "lina", "oUNION-E")
    await jobs.run_pretags(stack.runtime.services, "acme")
    assert _marks(stack, customer) == []
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/tags")
        assert (figure(html, "pretags-pending"), figure(html, "pretags-tag-deleted")) == (
            "0", "1")
        assert "标签已删除" in html
    finally:
        await console.close()


async def test_0059_leaves_applied_only_the_pretags_whose_mark_was_done(db_url: str) -> None:
    """Before 0059 a pre-tag was recorded applied once handed to the outbox; the upgrade
    keeps applied those whose mark_tag row is done and puts the others back to being marked
    (failed while the row is dead), their rows' payloads naming the pre-tag so the retry
    records it applied."""
    await upgrade_async(db_url, "0053")  # timestamps are stored as naive UTC
    at = datetime(2026, 12, 7, 3)
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as connection:
            for unionid, customer, status in (("oU1", "wm1", "done"), ("oU2", "wm2", "failed"),
                                              ("oU3", "wm3", "dead")):
                payload = json.dumps({"userid": "lina", "external_userid": customer,
                                      "add_tag": ["et1"], "remove_tag": [],
                                      "ref": f"pretag:{customer}:et1"})
                await connection.execute(text(
                    "INSERT INTO outbox (tenant, key, kind, payload, status, attempts, "
                    "last_error, result, due_at, created_at, updated_at) VALUES "
                    "('acme', :key, 'mark_tag', :payload, :status, 1, '', '', :at, :at, :at)"),
                    {"key": f"pretag:{customer}:et1", "payload": payload, "status": status,
                     "at": at})
                await connection.execute(text(
                    "INSERT INTO pretags (tenant, unionid, tag_id, import_id, created_at, "
                    "applied_at, guide, external_userid) VALUES ('acme', :unionid, 'et1', "
                    "'i1', :at, :at, 'lina', :customer)"),
                    {"unionid": unionid, "customer": customer, "at": at})
            await connection.execute(text(
                "INSERT INTO pretags (tenant, unionid, tag_id, import_id, created_at, "
                "applied_at, guide, external_userid) VALUES ('acme', 'oU4', 'et1', 'i1', :at, "
                "NULL, '', '')"), {"at": at})
        await upgrade_async(db_url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text(
                "SELECT unionid, applied_at IS NOT NULL, outbox_key FROM pretags "
                "ORDER BY unionid"))).all()
            payloads = dict((await connection.execute(text(
                "SELECT key, payload FROM outbox ORDER BY key"))).all())
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("oU1", True, "pretag:wm1:et1"),
                                        ("oU2", False, "pretag:wm2:et1"),
                                        ("oU3", False, "pretag:wm3:et1"), ("oU4", False, "")]
    assert [json.loads(payloads[f"pretag:{c}:et1"]).get("pretag") for c in ("wm1", "wm2", "wm3")
            ] == [None, "oU2", "oU3"]
