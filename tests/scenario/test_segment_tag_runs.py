"""批量打标签 as a run over HTTP, through the sandbox: starting one answers at once (202, the
run staging) and the marks reach WeCom when the background staging and the outbox are done;
the run's counts and its marks (sent, pending, failed, dead) are read back; a second start
while a run for the same segment and tag is staging is 409 naming that run, and a run a
stopped process left staging goes on from the periodic job; a later run marks again a
customer whose tag was removed; another tenant neither sees nor starts runs. The segment list
shows each segment's stored count with when it was counted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from guidebot import jobs
from guidebot.db.repo import segment_runs
from guidebot.db.types import utcnow
from guidebot.segments import tagging
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known, start_stack

NOW = datetime(2027, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Any, db_url: str):  # type: ignore[no-untyped-def]
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    stack.runtime.services.sop.clock = lambda: NOW  # segments count from it
    yield stack
    await stack.http.close()


async def _customer(stack: Stack, name: str, *tags: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name=name)
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    if tags:
        status, body = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                         json={"guide": "lina", "add": list(tags)})
        assert status == 200, body
    return customer


async def _setup(stack: Stack) -> tuple[str, str, int]:
    """A carrier of 新客, another customer of lina's without it, a customer following no
    guide, and the segment 全部 of them all: (the other customer, 新客's id, segment id)."""
    await stack.runtime.services.tags.sync("acme")
    await _customer(stack, "张晓雨", "新客")
    other = await _customer(stack, "李雷")
    await known(stack, customers=("wmNOGUIDE",))
    _, body = await stack.admin("/tags")
    groups = {g["group_name"]: g for g in body["groups"]}
    new = {t["name"]: t["id"] for t in groups["客户阶段"]["tags"]}["新客"]
    status, segment = await stack.admin("/segments", method="POST",
                                        json={"name": "全部", "conditions": {}})
    assert status == 201, segment
    return other, new, int(segment["id"])


def _marked(stack: Stack, since: int) -> list[tuple[str, str, list[str]]]:
    return [(c["body"]["userid"], c["body"]["external_userid"], c["body"]["add_tag"])
            for c in stack.calls("externalcontact/mark_tag")[since:]]


COUNTED = ("state", "matched", "queued", "carrying", "no_guide", "repeated", "sent",
           "pending", "failed", "dead")


async def test_a_run_answers_at_once_and_its_marks_arrive_once_staged(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tagging, "PAGE", 1)  # a page per customer: the cursor carries on
    other, new, segment = await _setup(stack)
    marks = len(stack.calls("externalcontact/mark_tag"))

    status, run = await stack.admin(f"/segments/{segment}/tags", method="POST",
                                    json={"tag_id": new, "operator": "运营小王"})
    assert status == 202, run
    assert (run["state"], run["tag"], run["matched"], run["queued"], run["operator"]) == (
        "staging", "新客", 0, 0, "运营小王")  # as started: nothing staged yet
    await stack.runtime.drain()
    status, done = await stack.admin(f"/segments/{segment}/tag-runs/{run['id']}")
    assert status == 200, done
    assert {k: done[k] for k in COUNTED} == {
        "state": "staged", "matched": 3, "queued": 1, "carrying": 1, "no_guide": 1,
        "repeated": 0, "sent": 1, "pending": 0, "failed": 0, "dead": 0}
    assert done["finished_at"] is not None
    assert _marked(stack, marks) == [("lina", other, [new])]
    _, card = await stack.admin(f"/customers/{other}")
    assert card["tags"] == ["新客"]

    # the tag comes off; a later run marks it again (a run's marks are its own)
    status, body = await stack.admin(f"/customers/{other}/tags", method="POST",
                                     json={"guide": "lina", "remove": ["新客"]})
    assert status == 200 and body["tags"] == [], body
    marks = len(stack.calls("externalcontact/mark_tag"))
    status, again = await stack.admin(f"/segments/{segment}/tags", method="POST",
                                      json={"tag_id": new})
    assert status == 202 and again["id"] != run["id"], again
    await stack.runtime.drain()
    assert _marked(stack, marks) == [("lina", other, [new])]
    status, listed = await stack.admin(f"/segments/{segment}/tag-runs")
    assert status == 200, listed
    assert [(r["id"], r["queued"], r["sent"], r["operator"]) for r in listed["runs"]] == [
        (again["id"], 1, 1, "api"), (run["id"], 1, 1, "运营小王")]  # newest first

    status, body = await stack.admin(f"/segments/{segment}/tags", method="POST",
                                     json={"tag_id": "etNOSUCH"})
    assert (status, body["field"]) == (404, "tag_id"), body
    status, body = await stack.admin(f"/segments/{segment}/tag-runs/999999")
    assert (status, body["field"]) == (404, "run_id"), body

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/segments/{segment}")
        assert status == 200 and f'<option value="{new}">新客</option>' in html
        assert re.findall(r'data-run="(\d+)" data-state="(\w+)"', html) == [
            (str(again["id"]), "staged"), (str(run["id"]), "staged")]
        assert "匹配 3 位，排队 1 个：已打 1，待发送 0，失败待重试 0，已放弃 0" in html, html
        status, _, resp = await console.post(f"/console/acme/segments/{segment}/tag",
                                             {"_csrf": csrf_in(html), "tag_id": new})
        assert status == 303, resp.headers
        status, html, _ = await console.get(resp.headers["Location"])
        started = re.search(r"批量打标签已开始（标签「新客」，任务 (\d+)）", html)
        assert started is not None, html
        await stack.runtime.drain()
        _, third = await stack.admin(f"/segments/{segment}/tag-runs/{started.group(1)}")
        assert (third["state"], third["operator"], third["carrying"]) == (
            "staged", "console", 2)  # both carry 新客 now
    finally:
        await console.close()


async def test_a_second_start_while_staging_is_409_and_a_stopped_run_goes_on(
        stack: Stack) -> None:
    other, new, segment = await _setup(stack)
    # a run a stopped process left staging: its lease ran out a minute ago, nothing staged
    async with stack.runtime.services.db.write() as s:
        left = await segment_runs.insert(
            s, tenant="acme", segment_id=segment, tag_id=new, tag="新客", operator="api",
            owner="stopped:1", lease_until=utcnow() - timedelta(minutes=1), now=utcnow())
        left_id = left.id
    marks = len(stack.calls("externalcontact/mark_tag"))

    status, body = await stack.admin(f"/segments/{segment}/tags", method="POST",
                                     json={"tag_id": new})
    assert status == 409 and body["field"] == "tag_id", body
    assert (body["run"]["id"], body["run"]["state"]) == (left_id, "staging"), body
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/segments/{segment}")
        status, html, _ = await console.post(f"/console/acme/segments/{segment}/tag",
                                             {"_csrf": csrf_in(html), "tag_id": new})
        assert status == 409  # refused: nothing started, not in 操作日志
        assert f"此标签的批量打标签任务 {left_id} 仍在排队中，未重复开始。" in html, html
    finally:
        await console.close()
    assert _marked(stack, marks) == []

    await jobs.run_segment_tag_resume(stack.runtime.services)  # the periodic job
    await stack.runtime.drain()
    _, done = await stack.admin(f"/segments/{segment}/tag-runs/{left_id}")
    assert {k: done[k] for k in ("state", "matched", "queued", "sent")} == {
        "state": "staged", "matched": 3, "queued": 1, "sent": 1}, done
    assert _marked(stack, marks) == [("lina", other, [new])]
    status, run = await stack.admin(f"/segments/{segment}/tags", method="POST",
                                    json={"tag_id": new})
    assert status == 202, run  # none staging now
    await stack.runtime.drain()


async def test_another_tenant_neither_sees_nor_starts_runs(stack: Stack) -> None:
    _, new, segment = await _setup(stack)
    status, run = await stack.admin(f"/segments/{segment}/tags", method="POST",
                                    json={"tag_id": new})
    assert status == 202, run
    await stack.runtime.drain()
    for path, method in ((f"/segments/{segment}/tags", "POST"),
                         (f"/segments/{segment}/tag-runs", "GET"),
                         (f"/segments/{segment}/tag-runs/{run['id']}", "GET")):
        status, body = await stack.admin(path, tenant="beta", method=method,
                                         json={"tag_id": new} if method == "POST" else None)
        assert status == 404, (path, body)
    # acme's own run under another of acme's segments is not found either
    status, other = await stack.admin("/segments", method="POST",
                                      json={"name": "另一个", "conditions": {}})
    status, body = await stack.admin(f"/segments/{other['id']}/tag-runs/{run['id']}")
    assert status == 404, body
    _, listed = await stack.admin(f"/segments/{other['id']}/tag-runs")
    assert listed["runs"] == []


def _listed_count(html: str, segment: int) -> tuple[str, str]:
    found = re.search(rf'data-segment="{segment}".*?data-count="(\d+)"[^>]*>([^<]*)<', html,
                      re.S)
    assert found is not None, html
    return found.group(1), found.group(2)


async def test_the_list_shows_stored_counts_with_when_they_were_counted(stack: Stack) -> None:
    services = stack.runtime.services
    await services.tags.sync("acme")
    await _customer(stack, "张晓雨")
    status, made = await stack.admin("/segments", method="POST",
                                     json={"name": "全部", "conditions": {}})
    assert status == 201 and made["count"] == 1, made
    segment = made["id"]
    await _customer(stack, "李雷")

    _, listed = await stack.admin("/segments")
    row = {s["id"]: s for s in listed["segments"]}[segment]
    assert (row["count"], row["counted_at"]) == (1, made["counted_at"])  # stored on save
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        _, html, _ = await console.get("/console/acme/segments")
        count, text = _listed_count(html, segment)
        assert count == "1" and text.startswith("约 1 人 · 计于 ") and text.endswith("10:00")

        _, opened = await stack.admin(f"/segments/{segment}")  # opening counts live
        assert opened["count"] == 2, opened
        _, listed = await stack.admin("/segments")
        assert [s["count"] for s in listed["segments"] if s["id"] == segment] == [2]

        # a count older than ten minutes is counted again by the list
        await _customer(stack, "韩梅梅")
        later = NOW + timedelta(minutes=11)
        services.sop.clock = lambda: later
        _, listed = await stack.admin("/segments")
        row = {s["id"]: s for s in listed["segments"]}[segment]
        assert row["count"] == 3 and row["counted_at"].startswith("2027-03-03T02:11"), row
        _, html, _ = await console.get("/console/acme/segments?lang=en")
        count, text = _listed_count(html, segment)
        assert count == "3" and text.startswith("about 3 · counted ") and \
            text.endswith("10:11"), text
    finally:
        await console.close()


async def test_a_stopped_run_goes_on_from_the_page_it_got_to(stack: Stack) -> None:
    other, new, segment = await _setup(stack)
    _, members = await stack.admin(f"/segments/{segment}/customers?limit=3")
    order = [c["external_userid"] for c in members["customers"]]
    staged = order.index(other) + 1  # the pages up to the customer to mark were staged
    _, page = await stack.admin(f"/segments/{segment}/customers?limit={staged}")
    assert page["next"], page  # a page is left to stage
    async with stack.runtime.services.db.write() as s:
        left = await segment_runs.insert(
            s, tenant="acme", segment_id=segment, tag_id=new, tag="新客", operator="api",
            owner="stopped:1", lease_until=utcnow() - timedelta(minutes=1), now=utcnow())
        left_id = left.id
        left.cursor, left.matched = page["next"], staged
    marks = len(stack.calls("externalcontact/mark_tag"))

    await jobs.run_segment_tag_resume(stack.runtime.services)
    await stack.runtime.drain()
    _, done = await stack.admin(f"/segments/{segment}/tag-runs/{left_id}")
    assert (done["state"], done["matched"]) == ("staged", 3), done
    assert _marked(stack, marks) == []  # the staged pages are not staged again
