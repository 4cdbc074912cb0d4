"""新建群发 over HTTP: HQ creates a one-off 群发 in the admin API or the console's content page
(stored in the database, checked by a drop file's rules); sent now it makes its tasks at once,
at a time the scheduled run fires it once; one not fired can be cancelled and then never
fires, and a cancel racing the scheduled run either wins (nothing is sent) or is refused
(409: the firing claimed it first); refusals name the field; other tenants neither see nor
fire it. The SOP clock is pinned: nothing here depends on the real time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from markupsafe import escape

from guidebot.sop import drops
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known, start_stack

NOW = datetime(2027, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TEXT = "双12预热开始啦"  # drop_double12_warmup's text


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Any, db_url: str):  # type: ignore[no-untyped-def]
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    stack.runtime.services.sop.clock = lambda: NOW
    yield stack
    await stack.http.close()


def _sends(stack: Stack, tenant: str = "acme") -> list[tuple[str, tuple[str, ...]]]:
    """The drop message's 群发 made in WeCom: (sender, customers)."""
    return sorted((c["body"]["sender"], tuple(c["body"]["external_userid"]))
                  for c in stack.calls("externalcontact/add_msg_template", tenant=tenant)
                  if TEXT in c["body"]["text"]["content"])


async def _customer(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _run(stack: Stack, at: datetime) -> None:
    sop = stack.runtime.services.sop
    sop.clock = lambda: at
    await sop.singletons("acme")
    await sop.tick("acme")


async def _console_drops(stack: Stack, tenant: str = "acme") -> dict[str, dict[str, Any]]:
    status, body = await stack.admin("/drops", tenant=tenant,
                                     token=stack.tenant(tenant).admin_token)
    assert status == 200, body
    return {d["id"]: d for d in body["drops"] if d["source"] == "console"}


def _draft(**changes: Any) -> dict[str, Any]:
    return {"title": "三月会员日", "channel": "guide_task", "message": "drop_double12_warmup",
            "audience": {"guides": ["lina"]}, "at": "now", **changes}


async def test_sent_now_makes_its_tasks_at_once_and_only_once(stack: Stack) -> None:
    lina = await _customer(stack, "lina", "陈思")
    await _customer(stack, "zhou", "王芳")  # not in the audience
    status, created = await stack.admin("/drops", method="POST",
                                        json=_draft(key="march-1", operator="运营小王"))
    assert status == 201, created
    drop = created["drop"]
    assert (drop["id"], drop["source"], drop["state"], drop["operator"]) == (
        "hq-1", "console", "fired", "运营小王")
    assert created["tasks"] == 1 and created["firing"] == "2027-03-03T02:00:00+00:00"
    await stack.runtime.services.sop.tick("acme")
    assert _sends(stack) == [("lina", (lina,))]

    status, again = await stack.admin("/drops", method="POST",
                                      json=_draft(key="march-1", operator="运营小王"))
    assert status == 200 and again == created  # the same key: nothing more
    status, clash = await stack.admin("/drops", method="POST",
                                      json=_draft(key="march-1", title="另一个"))
    assert status == 409 and clash["field"] == "key", clash
    assert list(await _console_drops(stack)) == ["hq-1"]

    await _run(stack, NOW + timedelta(minutes=5))  # the scheduled run: already fired
    await _run(stack, NOW + timedelta(hours=3))
    assert _sends(stack) == [("lina", (lina,))]
    status, sends = await stack.admin("/drops/hq-1/sends")
    assert status == 200 and [f["firing"] for f in sends["firings"]] == [created["firing"]]

    status, refused = await stack.admin("/drops/hq-1/cancel", method="POST")
    assert status == 409 and refused["field"] == "drop_id", refused
    assert (await _console_drops(stack))["hq-1"]["state"] == "fired"


async def test_a_scheduled_drop_fires_at_its_time_once(stack: Stack) -> None:
    lina = await _customer(stack, "lina", "陈思")
    status, created = await stack.admin("/drops", method="POST",
                                        json=_draft(at="2027-03-03T18:00:00+08:00"))
    assert status == 201 and created["tasks"] == 0 and created["firing"] == "", created
    assert created["drop"]["state"] == "scheduled"
    await _run(stack, NOW + timedelta(hours=7))  # 17:00 in Shanghai: not yet
    assert _sends(stack) == []
    await _run(stack, NOW + timedelta(hours=8, minutes=1))
    assert _sends(stack) == [("lina", (lina,))]
    await _run(stack, NOW + timedelta(hours=9))
    await _run(stack, NOW + timedelta(days=1, hours=9))
    assert _sends(stack) == [("lina", (lina,))]
    assert (await _console_drops(stack))["hq-1"]["state"] == "fired"


async def test_a_drop_created_for_now_without_sending_fires_on_the_next_run(
        stack: Stack) -> None:
    lina = await _customer(stack, "lina", "陈思")
    status, created = await stack.admin("/drops", method="POST",
                                        json=_draft(at="2027-03-03T10:00:00+08:00"))
    assert status == 201 and created["drop"]["state"] == "scheduled", created
    await _run(stack, NOW)  # not "first seen" and skipped: fired
    assert _sends(stack) == [("lina", (lina,))]


async def test_cancelled_before_its_time_it_never_fires(stack: Stack) -> None:
    await _customer(stack, "lina", "陈思")
    status, created = await stack.admin("/drops", method="POST",
                                        json=_draft(at="2027-03-03T18:00:00+08:00"))
    assert status == 201
    status, cancelled = await stack.admin("/drops/hq-1/cancel", method="POST")
    assert status == 200 and cancelled["state"] == "cancelled", cancelled
    status, again = await stack.admin("/drops/hq-1/cancel", method="POST")
    assert status == 200 and again["state"] == "cancelled"
    await _run(stack, NOW + timedelta(hours=8, minutes=1))
    await _run(stack, NOW + timedelta(hours=12))
    status, refused = await stack.admin("/drops/hq-1/fire", method="POST", json={})
    assert status == 400 and refused["field"] == "drop_id", refused
    assert _sends(stack) == []
    for path, code in (("/drops/nosuch/cancel", 404), ("/drops/double12_warmup/cancel", 400),
                       ("/drops/Bad%20Id/cancel", 400)):
        status, answer = await stack.admin(path, method="POST")
        assert status == code and answer["field"] == "drop_id", (path, answer)


async def _cancelled_during_the_run(stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                    owner: Any, name: str) -> tuple[int, Any]:
    """HQ cancels hq-1 (18:00 in Shanghai) over HTTP right after `owner.name` returns
    inside the scheduled run at its time: the cancel's answer."""
    real, answers = getattr(owner, name), []

    async def then_cancelled(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        answers.append(await stack.admin("/drops/hq-1/cancel", method="POST"))
        return result

    monkeypatch.setattr(owner, name, then_cancelled)
    await _run(stack, NOW + timedelta(hours=8, minutes=1))
    [answer] = answers
    return answer


async def test_a_cancel_just_after_the_run_read_the_drops_wins(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    await _customer(stack, "lina", "陈思")
    await stack.admin("/drops", method="POST", json=_draft(at="2027-03-03T18:00:00+08:00"))
    # the run has read hq-1 as live (not cancelled) when HQ cancels it
    status, cancelled = await _cancelled_during_the_run(
        stack, monkeypatch, stack.runtime.services.sop.tenant_drops, "live")
    assert status == 200 and cancelled["state"] == "cancelled", cancelled
    assert _sends(stack) == []  # the run does not fire what was cancelled
    status, sends = await stack.admin("/drops/hq-1/sends")
    assert status == 200 and sends["firings"] == []
    assert (await _console_drops(stack))["hq-1"]["state"] == "cancelled"


async def test_a_cancel_after_the_firing_claimed_the_drop_is_refused(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    lina = await _customer(stack, "lina", "陈思")
    await stack.admin("/drops", method="POST", json=_draft(at="2027-03-03T18:00:00+08:00"))
    # the firing has made its tasks when HQ cancels the drop
    status, refused = await _cancelled_during_the_run(stack, monkeypatch, drops, "_fire_any")
    assert status == 409 and refused["field"] == "drop_id", refused
    assert "fired" in refused["reason"]
    assert _sends(stack) == [("lina", (lina,))]
    assert (await _console_drops(stack))["hq-1"]["state"] == "fired"


async def test_drops_created_at_once_list_newest_first_by_number(stack: Stack) -> None:
    for n in range(10):  # the clock is pinned: all created at the same time
        status, _ = await stack.admin("/drops", method="POST", json=_draft(
            title=f"群发{n + 1}", at="2027-03-03T18:00:00+08:00"))
        assert status == 201
    assert list(await _console_drops(stack)) == [f"hq-{n}" for n in range(10, 0, -1)]
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        _, page, _ = await console.get("/console/acme/content")
        listed = re.findall(r'<tr data-drop="(hq-\d+)"', page)
        assert listed == [f"hq-{n}" for n in range(10, 0, -1)], listed
    finally:
        await console.close()


@pytest.mark.parametrize(("changes", "field"), [
    ({"message": "nosuch"}, "message"),
    ({"material": "scarf_oat_styling"}, "material"),  # with message: not both
    ({"channel": "group_task", "audience": {"tags_any": ["VIP"]}}, "audience.tags_any"),
    ({"audience": {"group_names": ["会员"]}}, "audience.group_names"),
    ({"channel": "sms"}, "channel"),
    ({"at": "2027-03-04T10:00:00"}, "at"),  # no offset
    ({"at": "next week"}, "at"),
    ({"at": "2027-03-01T10:00:00+08:00"}, "at"),  # passed
    ({"title": ""}, "title"),
    ({"audience": {"tags": ["VIP"]}}, "audience.tags"),
])
async def test_bad_drops_are_refused_naming_the_field(stack: Stack, changes: dict[str, Any],
                                                      field: str) -> None:
    await _customer(stack, "lina", "陈思")
    status, refused = await stack.admin("/drops", method="POST", json=_draft(**changes))
    assert status == 400 and refused["field"] == field, refused
    assert refused["error"].startswith(field)
    assert await _console_drops(stack) == {}
    await stack.runtime.services.sop.tick("acme")
    assert _sends(stack) == []


async def test_a_material_and_a_group_drop_are_taken(stack: Stack) -> None:
    status, material = await stack.admin("/drops", method="POST", json={
        **_draft(at="2027-03-05T10:00:00+08:00"), "message": None,
        "material": "scarf_oat_styling"})
    assert status == 201 and material["drop"]["message"] == "material:scarf_oat_styling"
    status, group = await stack.admin("/drops", method="POST", json=_draft(
        channel="group_task", at="2027-03-05T10:00:00+08:00",
        audience={"stores": ["S01"], "group_names": ["会员"]}))
    assert status == 201 and group["drop"]["group_names"] == ["会员"], group
    assert list(await _console_drops(stack)) == ["hq-2", "hq-1"]


async def test_another_tenant_neither_sees_nor_fires_it(stack: Stack) -> None:
    await _customer(stack, "lina", "陈思")
    status, _ = await stack.admin("/drops", method="POST",
                                  json=_draft(at="2027-03-03T18:00:00+08:00"))
    assert status == 201
    assert await _console_drops(stack, "beta") == {}
    for path, method in (("/drops/hq-1/fire", "POST"), ("/drops/hq-1/sends", "GET"),
                         ("/drops/hq-1/cancel", "POST")):
        status, answer = await stack.admin(path, tenant="beta", token="beta-admin-token",
                                           method=method, json={} if method == "POST" else None)
        assert status == 404 and answer["field"] == "drop_id", (path, answer)
    assert (await _console_drops(stack))["hq-1"]["state"] == "scheduled"


async def test_the_console_creates_lists_and_cancels_drops(stack: Stack) -> None:
    lina = await _customer(stack, "lina", "陈思")
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/content")
        assert status == 200 and 'id="new-drop"' in html, html
        assert '<option value="drop_double12_warmup"' in html
        form = {"_csrf": csrf_in(html), "title": "控制台群发", "channel": "guide_task",
                "message": "drop_double12_warmup", "material": "", "guides": "lina",
                "stores": "", "tags_any": "", "tags_all": "", "tags_none": "",
                "group_names": "", "when": "now", "at": ""}
        key = re.search(r'name="key" value="([^"]+-new)"', html)
        assert key, html  # one key per page view
        form["key"] = key.group(1)
        status, _, resp = await console.post("/console/acme/drops", form)
        assert status == 303 and "created=hq-1" in resp.headers["Location"], resp.headers
        status, page, _ = await console.get(resp.headers["Location"])
        assert "已新建群发「控制台群发」（hq-1），生成 1 个任务" in page, page
        status, _, again = await console.post("/console/acme/drops", form)  # a double click
        assert status == 303 and again.headers["Location"] == resp.headers["Location"]
        assert list(await _console_drops(stack)) == ["hq-1"]
        await stack.runtime.services.sop.tick("acme")
        assert _sends(stack) == [("lina", (lina,))]

        # at a time in the tenant's zone (Shanghai): 18:00 is 10:00 UTC
        later = {**form, "title": "晚间群发", "when": "at", "at": "2027-03-03T18:00"}
        status, _, resp = await console.post("/console/acme/drops", later)
        assert status == 303 and "created=hq-2" in resp.headers["Location"]
        _, page, _ = await console.get("/console/acme/content")
        rows = {m.group(1): m.group(0) for m in
                re.finditer(r'<tr data-drop="(hq-\d+)".*?</tr>', page, re.S)}
        assert set(rows) == {"hq-1", "hq-2"}
        assert "控制台创建" in rows["hq-1"] and "/console/acme/drops/hq-1" in rows["hq-1"]
        assert "2027-03-03 18:00" in rows["hq-2"] and "已计划" in rows["hq-2"]
        assert "/drops/hq-2/cancel" in rows["hq-2"] and "/drops/hq-1/cancel" not in rows["hq-1"]
        status, sends, _ = await console.get("/console/acme/drops/hq-1")
        assert status == 200 and "控制台群发" in sends

        status, _, resp = await console.post("/console/acme/drops/hq-2/cancel",
                                             {"_csrf": csrf_in(page)})
        assert status == 303 and "cancelled=hq-2" in resp.headers["Location"]
        assert (await _console_drops(stack))["hq-2"]["state"] == "cancelled"
        await _run(stack, NOW + timedelta(hours=8, minutes=1))
        assert _sends(stack) == [("lina", (lina,))]

        status, refused, _ = await console.post("/console/acme/drops",
                                                {**form, "message": "nosuch"})
        assert status == 400 and "「消息」" in refused, refused
        status, refused, _ = await console.post("/console/acme/drops/hq-1/cancel",
                                                {"_csrf": csrf_in(page)})
        assert status == 409 and "已发送" in refused, refused
        assert list(await _console_drops(stack)) == ["hq-2", "hq-1"]
    finally:
        await console.close()


async def test_the_console_words_a_refusal_in_its_language_the_api_in_english(
        stack: Stack) -> None:
    bad = {"message": "nosuch"}, {"audience": {"guides": ["lina"], "group_names": ["会员"]}}
    reasons = []
    for changes in bad:
        status, refused = await stack.admin("/drops", method="POST", json=_draft(**changes))
        assert status == 400 and refused["reason"].isascii(), refused  # the API: English
        reasons.append(refused["reason"])
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        _, html, _ = await console.get("/console/acme/content")
        form = {"_csrf": csrf_in(html), "title": "控制台群发", "channel": "guide_task",
                "message": "nosuch", "material": "", "guides": "lina", "stores": "",
                "tags_any": "", "tags_all": "", "tags_none": "", "group_names": "",
                "when": "now", "at": "", "key": ""}
        grouped = {**form, "message": "drop_double12_warmup", "group_names": "会员"}
        for data, field, reason in ((form, "消息", reasons[0]),
                                    (grouped, "受众·群名包含", reasons[1])):
            status, page, _ = await console.post("/console/acme/drops?lang=zh-CN", data)
            assert status == 400 and f"新建群发未通过检查：「{field}」" in page, page
            assert escape(reason) not in page  # no English inside the Chinese sentence
            status, page, _ = await console.post("/console/acme/drops?lang=en", data)
            assert status == 400 and escape(reason) in page, page  # the English page: why
    finally:
        await console.close()


async def test_a_group_drop_sent_now_reaches_the_owners_groups(stack: Stack) -> None:
    await known(stack, guides=("lina", "zhou"))
    created = await stack.sandbox.create_group("acme", "lina", name="静安会员群", members=[])
    await stack.sandbox.create_group("acme", "lina", name="同事群", members=[])
    await stack.sandbox.create_group("acme", "zhou", name="徐汇会员群", members=[])
    await stack.runtime.drain()
    chat_id = str(created["chat_id"])
    status, body = await stack.admin("/drops", method="POST", json=_draft(
        channel="group_task", title="会员群福利", audience={"guides": ["lina"],
                                                          "group_names": ["会员"]}))
    assert status == 201 and body["tasks"] == 1, body
    await stack.runtime.services.sop.tick("acme")
    sends = [(c["body"]["sender"], c["body"]["chat_id_list"])
             for c in stack.calls("externalcontact/add_msg_template")
             if c["body"].get("chat_type") == "group" and TEXT in c["body"]["text"]["content"]]
    assert sends == [("lina", [chat_id])]  # not the 同事群, not zhou's
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/groups/{chat_id}")
        assert status == 200 and "会员群福利" in html  # its 群发记录 names the drop's title
    finally:
        await console.close()
