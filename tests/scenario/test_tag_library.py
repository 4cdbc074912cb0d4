"""标签管理 over HTTP, through the sandbox: HQ lists the corp tag library with the customers
carrying each tag, adds tags to a group or in a new group, renames, reorders and deletes a tag
or a whole group. WeCom is asked first and the mirror follows only when it agrees: a refusal
(a tag made in the WeCom console, which the app may not change) is a 502 naming the errcode and
changes nothing. Bad names are 400s naming the field; another tenant's tag is 404."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, event

from guidebot.db.repo import relation_tags
from guidebot.db.repo import tags as tags_repo
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack


def _groups(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["group_name"]: g for g in body["groups"]}


def _tags(group: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in group["tags"]}


def _sandbox_tags(stack: Stack, tenant: str = "acme") -> dict[str, set[str]]:
    """The live tags WeCom (the sandbox) holds, by group name."""
    groups = stack.sandbox.state(tenant)["tag_groups"]
    return {g["group_name"]: {t["name"] for t in g["tag"] if not t["deleted"]}
            for g in groups if not g["deleted"]}


async def _customer_with(stack: Stack, *tags: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="张晓雨")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    status, body = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                     json={"guide": "lina", "add": list(tags)})
    assert status == 200, body
    return customer


async def test_hq_adds_renames_reorders_and_deletes_tags_and_the_mirror_follows(
        stack: Stack) -> None:
    await stack.runtime.services.tags.sync("acme")
    customer = await _customer_with(stack, "新客")
    status, body = await stack.admin("/tags")
    assert status == 200, body
    stage = _groups(body)["客户阶段"]
    assert stage["declared"] is True and _tags(stage)["新客"]["declared"] is True
    assert {n: t["customers"] for n, t in _tags(stage).items()} == {
        "新客": 1, "复购客": 0, "沉睡客": 0}

    status, made = await stack.admin("/tags", method="POST", json={
        "group_name": "会员等级", "order": 5,
        "tags": [{"name": "金卡", "order": 2}, {"name": " 银卡 ", "order": 9}]})
    assert status == 201, made
    assert made["group_name"] == "会员等级" and made["order"] == 5
    assert [t["name"] for t in made["tags"]] == ["金卡", "银卡"]  # the name trimmed
    assert _sandbox_tags(stack)["会员等级"] == {"金卡", "银卡"}
    group_id = made["group_id"]
    gold, silver = (t["id"] for t in made["tags"])
    status, body = await stack.admin("/tags")
    members = _groups(body)["会员等级"]
    assert [t["name"] for t in members["tags"]] == ["银卡", "金卡"]  # larger order first
    assert members["order"] == 5 and members["declared"] is False
    assert not any(t["declared"] for t in members["tags"])

    status, more = await stack.admin("/tags", method="POST", json={
        "group_id": group_id, "tags": [{"name": "钻石卡"}]})
    assert status == 201, more
    assert _sandbox_tags(stack)["会员等级"] == {"金卡", "银卡", "钻石卡"}

    status, body = await stack.admin(f"/tags/{gold}", method="PATCH",
                                     json={"name": "金卡会员", "order": 20})
    assert status == 200, body
    assert (body["name"], body["order"], body["group_id"]) == ("金卡会员", 20, group_id)
    assert _sandbox_tags(stack)["会员等级"] == {"金卡会员", "银卡", "钻石卡"}
    status, body = await stack.admin("/tags")
    assert [t["name"] for t in _groups(body)["会员等级"]["tags"]][0] == "金卡会员"

    status, body = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                     json={"guide": "lina", "add": ["金卡会员"]})
    assert status == 200 and "金卡会员" in body["tags"], body
    status, body = await stack.admin("/tags")
    assert _tags(_groups(body)["会员等级"])["金卡会员"]["customers"] == 1

    status, body = await stack.admin(f"/tags/{gold}", method="DELETE")
    assert (status, body) == (200, {"id": gold, "name": "金卡会员", "deleted": True})
    assert _sandbox_tags(stack)["会员等级"] == {"银卡", "钻石卡"}
    status, card = await stack.admin(f"/customers/{customer}")
    assert card["tags"] == ["新客"], card
    follow = next(f for f in stack.sandbox.state("acme")["follows"]
                  if f["external_userid"] == customer)
    assert gold not in follow["tag_ids"]
    status, body = await stack.admin(f"/tags/{gold}", method="DELETE")
    assert status == 404 and body["field"] == "tag_id", body

    status, body = await stack.admin(f"/tag-groups/{group_id}", method="DELETE")
    assert (status, body["name"], body["deleted"]) == (200, "会员等级", True), body
    assert "会员等级" not in _sandbox_tags(stack)
    status, body = await stack.admin("/tags")
    assert "会员等级" not in _groups(body) and silver not in str(body)
    # the hourly sync agrees with what the mirror did
    await stack.runtime.services.tags.sync("acme")
    status, again = await stack.admin("/tags")
    assert again == body


async def test_bad_names_are_refused_naming_the_field_and_nothing_is_asked_of_wecom(
        stack: Stack) -> None:
    await stack.runtime.services.tags.sync("acme")
    status, made = await stack.admin("/tags", method="POST", json={
        "group_name": "会员等级", "tags": [{"name": "金卡"}, {"name": "银卡"}]})
    assert status == 201, made
    group_id = made["group_id"]
    gold = made["tags"][0]["id"]
    def edits() -> int:  # calls that would change the library (the stack's jobs make others)
        return len([c for c in stack.calls() if c["path"] in (
            "externalcontact/add_corp_tag", "externalcontact/edit_corp_tag",
            "externalcontact/del_corp_tag")])
    asked = edits()
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/tags", {"group_id": group_id, "tags": [{"name": "  "}]}, "tags.0.name"),
        ("POST", "/tags", {"group_id": group_id, "tags": [{"name": "新品"}, {"name": "x" * 31}]},
         "tags.1.name"),
        ("POST", "/tags", {"group_id": group_id, "tags": [{"name": "银卡"}]}, "tags.0.name"),
        ("POST", "/tags", {"group_id": group_id, "tags": [{"name": "新品"}, {"name": "新品"}]},
         "tags.1.name"),
        ("POST", "/tags", {"group_name": "客户阶段", "tags": [{"name": "新品"}]}, "group_name"),
        ("POST", "/tags", {"group_name": "", "tags": [{"name": "新品"}]}, "group_id"),
        ("POST", "/tags", {"group_id": group_id, "group_name": "另一组",
                           "tags": [{"name": "新品"}]}, "group_id"),
        ("POST", "/tags", {"group_id": group_id, "tags": []}, "tags"),
        ("POST", "/tags", {"group_id": group_id, "tags": [{"name": "a", "order": -1}]},
         "tags.0.order"),
        ("PATCH", f"/tags/{gold}", {"name": "银卡"}, "name"),
        ("PATCH", f"/tags/{gold}", {"name": "x" * 31}, "name"),
        ("PATCH", f"/tags/{gold}", {}, "name"),
        ("PATCH", f"/tags/{gold}", {"color": "red"}, "color"),
    ]
    for method, path, body, field in cases:
        status, answer = await stack.admin(path, method=method, json=body)
        assert (status, answer["field"]) == (400, field), (path, body, answer)
    status, answer = await stack.admin("/tags", method="POST", json={
        "group_id": "etNOSUCHGROUP", "tags": [{"name": "新品"}]})
    assert (status, answer["field"]) == (404, "group_id"), answer
    assert edits() == asked  # WeCom was not asked
    assert _sandbox_tags(stack)["会员等级"] == {"金卡", "银卡"}


async def test_tags_declared_in_tags_toml_are_not_renamed_or_deleted(stack: Stack) -> None:
    await stack.runtime.services.tags.sync("acme")
    status, body = await stack.admin("/tags")
    stage = _groups(body)["客户阶段"]
    new = _tags(stage)["新客"]["id"]
    for method, path, json, field in (
            ("PATCH", f"/tags/{new}", {"name": "新顾客"}, "tag_id"),
            ("DELETE", f"/tags/{new}", None, "tag_id"),
            ("DELETE", f"/tag-groups/{stage['group_id']}", None, "group_id")):
        status, answer = await stack.admin(path, method=method, json=json)
        assert (status, answer["field"]) == (400, field), answer
        assert "tags.toml" in answer["reason"]
    assert _sandbox_tags(stack)["客户阶段"] == {"新客", "复购客", "沉睡客"}
    # a tag HQ added to a declared group is HQ's to change
    status, made = await stack.admin("/tags", method="POST", json={
        "group_id": stage["group_id"], "tags": [{"name": "高潜客"}]})
    assert status == 201, made
    status, body = await stack.admin(f"/tags/{made['tags'][0]['id']}", method="PATCH",
                                     json={"order": 3})
    assert (status, body["name"], body["order"]) == (200, "高潜客", 3), body


async def test_a_wecom_refusal_is_a_502_and_changes_nothing(stack: Stack) -> None:
    """A tag made in the WeCom console was not created by the app: WeCom refuses to change it
    (301002, as the sandbox assumes) and the mirror keeps it as it was."""
    await stack.runtime.services.tags.sync("acme")
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/tags", json={
            "group_name": "直播", "tag": [{"name": "双12直播间"}]}) as resp:
        assert resp.status == 200, await resp.text()
    await stack.runtime.drain()  # change_external_tag: the library is synced
    status, body = await stack.admin("/tags")
    live = _groups(body)["直播"]
    tag_id = live["tags"][0]["id"]
    for method, path, json in (("PATCH", f"/tags/{tag_id}", {"name": "双12"}),
                               ("DELETE", f"/tags/{tag_id}", None),
                               ("DELETE", f"/tag-groups/{live['group_id']}", None)):
        status, answer = await stack.admin(path, method=method, json=json)
        assert (status, answer["errcode"]) == (502, 301002), answer
        assert "WeCom refused" in answer["reason"], answer
    status, after = await stack.admin("/tags")
    assert after == body
    assert _sandbox_tags(stack)["直播"] == {"双12直播间"}
    async with stack.runtime.services.db.read() as s:
        assert {t.name for t in await tags_repo.list_library(s, tenant="acme")} >= {"双12直播间"}


async def test_another_tenants_tags_are_not_found_and_its_token_is_refused(
        stack: Stack) -> None:
    await stack.runtime.services.tags.sync("acme")
    status, made = await stack.admin("/tags", method="POST", json={
        "group_name": "会员等级", "tags": [{"name": "金卡"}]})
    assert status == 201, made
    gold, group_id = made["tags"][0]["id"], made["group_id"]
    status, body = await stack.admin("/tags", tenant="beta")
    assert status == 200 and "会员等级" not in _groups(body), body
    for method, path, json in (("PATCH", f"/tags/{gold}", {"name": "x"}),
                               ("DELETE", f"/tags/{gold}", None),
                               ("DELETE", f"/tag-groups/{group_id}", None),
                               ("POST", "/tags", {"group_id": group_id,
                                                  "tags": [{"name": "银卡"}]})):
        status, answer = await stack.admin(path, tenant="beta", method=method, json=json)
        assert status == 404, (path, answer)
    status, _ = await stack.admin("/tags", token="beta-admin-token")
    assert status == 403
    assert _sandbox_tags(stack)["会员等级"] == {"金卡"}


async def test_the_console_lists_adds_renames_and_deletes_with_refusals_worded(
        stack: Stack) -> None:
    await stack.runtime.services.tags.sync("acme")
    customer = await _customer_with(stack, "新客")
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/tags")
        assert status == 200 and 'href="/console/acme/tags" aria-current="page"' in html
        link = "/console/acme/customers?" + urlencode({"tag": "新客"})
        assert f'<a href="{link}">1</a>' in html, html
        new = _tags(_groups((await stack.admin("/tags"))[1])["客户阶段"])["新客"]["id"]
        assert f"/tags/{new}/delete" not in html  # declared in tags.toml: no forms
        status, found, _ = await console.get(link)
        assert status == 200 and customer in found
        csrf = csrf_in(html)

        status, _, resp = await console.post("/console/acme/tags", {
            "_csrf": csrf, "group_id": "", "group_name": "会员等级", "names": "金卡\n\n银卡\n"})
        assert status == 303 and resp.headers["Location"].endswith("#notice"), resp.headers
        assert _sandbox_tags(stack)["会员等级"] == {"金卡", "银卡"}
        status, html, _ = await console.get(resp.headers["Location"])
        assert 'id="notice">已新增标签：金卡、银卡。' in html, html
        _, body = await stack.admin("/tags")
        members = _groups(body)["会员等级"]
        gold = _tags(members)["金卡"]["id"]
        assert f"/tags/{gold}/delete" in html  # HQ's own tags have their forms

        status, page, _ = await console.post("/console/acme/tags", {
            "_csrf": csrf, "group_id": members["group_id"], "names": "银卡"})
        assert status == 400 and "这个标签组里已有「银卡」" in page, page
        status, page, _ = await console.post(f"/console/acme/tags/{gold}", {
            "_csrf": csrf, "name": "金卡会员", "order": "x"})
        assert status == 400 and "排序值须为非负整数" in page

        status, _, resp = await console.post(f"/console/acme/tags/{gold}", {
            "_csrf": csrf, "name": "金卡会员", "order": "7"})
        assert status == 303, resp.headers
        assert _sandbox_tags(stack)["会员等级"] == {"金卡会员", "银卡"}

        status, page, _ = await console.post(f"/console/acme/tags/{gold}/delete",
                                             {"_csrf": csrf})
        assert status == 400 and "请先勾选确认框" in page
        assert _sandbox_tags(stack)["会员等级"] == {"金卡会员", "银卡"}
        status, _, resp = await console.post(f"/console/acme/tags/{gold}/delete",
                                             {"_csrf": csrf, "confirm": "yes"})
        assert status == 303
        status, html, _ = await console.get(resp.headers["Location"])
        assert "标签「金卡会员」已删除。" in html and "金卡会员</th>" not in html
        status, _, resp = await console.post(
            f"/console/acme/tag-groups/{members['group_id']}/delete",
            {"_csrf": csrf, "confirm": "yes"})
        assert status == 303 and "会员等级" not in _sandbox_tags(stack)

        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/tags", json={
                "group_name": "直播", "tag": [{"name": "双12直播间"}]}) as made:
            assert made.status == 200
        await stack.runtime.drain()
        _, body = await stack.admin("/tags")
        live = _tags(_groups(body)["直播"])["双12直播间"]["id"]
        status, page, _ = await console.post(f"/console/acme/tags/{live}/delete?lang=en",
                                             {"_csrf": csrf, "confirm": "yes"})
        assert status == 400 and "errcode 301002" in page and "Nothing was changed" in page
        status, page, _ = await console.post(f"/console/acme/tags/{live}?lang=zh-CN",
                                             {"_csrf": csrf, "name": "双12"})
        assert status == 400 and "只能修改或删除本应用创建的标签" in page, page
        assert _sandbox_tags(stack)["直播"] == {"双12直播间"}
    finally:
        await console.close()


@contextlib.contextmanager
def _corp_tag_writes(tenant: str = "acme") -> Iterator[list[str]]:
    """The statements that write the tenant's corp_tags rows while the block runs (on any
    engine of the process: the app's, and on SQLite the one of its inline transactions; the
    other tenant's start-up sync may run meanwhile)."""
    seen: list[str] = []

    def heard(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if re.match(r"\s*(INSERT|UPDATE|DELETE)\b[^;]*\bcorp_tags\b", statement, re.I | re.S) \
                and repr(tenant) in repr(params):
            seen.append(statement.split()[0].upper())

    event.listen(Engine, "before_cursor_execute", heard)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", heard)


async def _wecom_says_the_library_changed(stack: Stack, fields: dict[str, str]) -> None:
    """A change_external_tag callback (guidebot syncs the library on it)."""
    asked = len(stack.calls("externalcontact/get_corp_tag_list"))
    await stack.sandbox.simulate_event("acme", {"Event": "change_external_tag", **fields})
    await stack.runtime.drain()
    assert len(stack.calls("externalcontact/get_corp_tag_list")) > asked  # it did sync


async def test_a_sync_writes_only_what_changed_in_wecom(stack: Stack) -> None:
    """The library sync applies WeCom's changes as differences: a sync finding nothing new
    writes no row; tags an admin adds, renames or deletes in the WeCom console (each raising
    change_external_tag) are inserted, updated or marked deleted one row each, and the mirror
    then lists what WeCom does."""
    await stack.runtime.services.tags.sync("acme")
    status, before = await stack.admin("/tags")
    assert status == 200 and before["groups"], before
    with _corp_tag_writes() as writes:
        await _wecom_says_the_library_changed(stack, {"Id": "x", "ChangeType": "shuffle"})
        await stack.runtime.services.tags.sync("acme")
    assert writes == []
    status, after = await stack.admin("/tags")
    assert after == before

    with _corp_tag_writes() as writes:
        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/tags", json={
                "group_name": "直播", "tag": [{"name": "双12直播间"}, {"name": "618直播间"}]}) \
                as resp:
            assert resp.status == 200, await resp.text()
        await stack.runtime.drain()  # a callback per tag and for the group: synced on each
    assert writes == ["INSERT", "INSERT"], writes
    status, body = await stack.admin("/tags")
    live = _tags(_groups(body)["直播"])
    assert set(live) == {"双12直播间", "618直播间"}
    double12, june = live["双12直播间"]["id"], live["618直播间"]["id"]

    with _corp_tag_writes() as writes:
        async with stack.http.patch(f"{stack.sandbox_url}/_sandbox/acme/tags/{double12}",
                                    json={"name": "双12主会场", "order": 7}) as resp:
            assert resp.status == 200, await resp.text()
        await stack.runtime.drain()
    assert writes == ["UPDATE"], writes
    status, body = await stack.admin("/tags")
    live = _tags(_groups(body)["直播"])
    assert (live["双12主会场"]["id"], live["双12主会场"]["order"]) == (double12, 7)
    assert "双12直播间" not in live

    with _corp_tag_writes() as writes:
        await _wecom_says_the_library_changed(
            stack, {"Id": june, "TagType": "tag", "ChangeType": "delete"})
    assert writes == ["UPDATE"], writes
    status, body = await stack.admin("/tags")
    assert set(_tags(_groups(body)["直播"])) == {"双12主会场"}
    async with stack.runtime.services.db.read() as s:
        assert [t.deleted for t in await tags_repo.live_tags(s, tenant="acme", tag_id=june)] \
            == []
        assert await tags_repo.tag_names(s, tenant="acme", tag_ids=[june]) == ["618直播间"]
    status, again = await stack.admin("/tags")
    with _corp_tag_writes() as writes:
        await stack.runtime.services.tags.sync("acme")
    assert writes == [] and (await stack.admin("/tags"))[1] == again


async def test_a_tag_deleted_in_wecom_comes_off_its_customers_with_the_sync(
        stack: Stack) -> None:
    """A tag (or a whole group) an admin deletes in the WeCom console raises
    change_external_tag; the sync that marks it deleted takes it off every customer in the
    same transaction, so the customer no longer carries it anywhere and the daily sweep has
    nothing left to mend."""
    await stack.runtime.services.tags.sync("acme")
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/tags", json={
            "group_name": "直播", "tag": [{"name": "双12直播间"}, {"name": "618直播间"}]}) as resp:
        assert resp.status == 200, await resp.text()
    await stack.runtime.drain()
    status, body = await stack.admin("/tags")
    live = _tags(_groups(body)["直播"])
    double12, june = live["双12直播间"]["id"], live["618直播间"]["id"]
    group_id = _groups(body)["直播"]["group_id"]
    customer = await _customer_with(stack, "新客", "双12直播间", "618直播间")
    status, card = await stack.admin(f"/customers/{customer}")
    assert sorted(card["tags"]) == sorted(["新客", "双12直播间", "618直播间"]), card

    async def carried() -> set[str]:
        async with stack.runtime.services.db.read() as s:
            return await relation_tags.relation_tag_ids(s, tenant="acme",
                                                        external_userid=customer, guide="lina")

    await _wecom_says_the_library_changed(
        stack, {"Id": june, "TagType": "tag", "ChangeType": "delete"})
    status, card = await stack.admin(f"/customers/{customer}")
    assert sorted(card["tags"]) == sorted(["新客", "双12直播间"]), card
    assert june not in await carried()
    status, found = await stack.admin(f"/customers?{urlencode({'tag': '618直播间'})}")
    assert (status, found["customers"]) == (200, []), found

    await _wecom_says_the_library_changed(
        stack, {"Id": group_id, "TagType": "tag_group", "ChangeType": "delete"})
    status, card = await stack.admin(f"/customers/{customer}")
    assert card["tags"] == ["新客"], card
    assert double12 not in await carried() and june not in await carried()
    status, body = await stack.admin("/tags")
    assert "直播" not in _groups(body)
    assert _tags(_groups(body)["客户阶段"])["新客"]["customers"] == 1
    # the mirror already agrees with WeCom: the daily sweep finds nothing to change
    assert await stack.runtime.services.tags.sweep("acme") == 0
