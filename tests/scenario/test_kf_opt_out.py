"""A customer opts out in 微信客服 (退订): the confirmation goes out, the opt-out tag of
chat/opt_out.toml is marked on their relation in WeCom, their SOP enrolments end (no task
fires later), no SOP enrolls them again (manually or by audience) and content drops leave
them out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from guidebot.content.chat import load_chat_content
from guidebot.content.library import load_library
from guidebot.db.models_kf import OptOut
from tests.support.chat import LIBRARY
from tests.support.console import Console, csrf_in
from tests.support.kf import control, customer_writes, kf_rows, sent_texts
from tests.support.library_edits import (
    edit,
    library_stack_fixture,  # noqa: F401  (the fixture)
    reload,
)
from tests.support.stack import Stack

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test tenant's timezone
OPT_OUT_TAG = "已退订"  # content_library/chat/opt_out.toml, declared in tags.toml


async def _store_customer(stack: Stack, name: str) -> str:
    """A customer who added lina through a store channel code: enrolled in 新客培育."""
    status, code = await stack.admin("/channels", method="POST",
                                     json={"guide": "lina", "store": "S01", "tags": ["门店扫码"]})
    assert status == 201, code
    added = await control(stack, "simulate/add_contact",
                          {"config_id": code["config_id"], "name": name})
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _enrollments(stack: Stack, sop_id: str) -> dict[str, int]:
    status, body = await stack.admin("/sops")
    assert status == 200, body
    return dict(next(s for s in body["sops"] if s["id"] == sop_id)["enrollments"])


async def _sandbox_state(stack: Stack) -> Any:
    async with stack.http.get(f"{stack.sandbox_url}/_sandbox/acme/state") as resp:
        return await resp.json()


async def _opt_out_marks(stack: Stack) -> list[dict[str, Any]]:
    """mark_tag calls adding the opt-out tag."""
    state = await _sandbox_state(stack)
    [tag_id] = [t["id"] for g in state["tag_groups"] for t in g["tag"] if t["name"] == OPT_OUT_TAG]
    return [c["body"] for c in stack.calls("externalcontact/mark_tag")
            if tag_id in c["body"].get("add_tag", [])]


async def _relation_tags(stack: Stack, external_userid: str) -> set[str]:
    state = await _sandbox_state(stack)
    names = {t["id"]: t["name"] for g in state["tag_groups"] for t in g["tag"]}
    [follow] = [f for f in state["follows"] if f["external_userid"] == external_userid]
    return {names[t] for t in follow["tag_ids"]}


async def test_opt_out_tags_the_customer_and_stops_sops(stack: Stack) -> None:
    customer = await _store_customer(stack, "孙悦")
    other = await _store_customer(stack, "周宁")
    assert await _enrollments(stack, "new_customer_nurture") == {"active": 2}
    assert OPT_OUT_TAG not in await _relation_tags(stack, customer)

    await customer_writes(stack, customer, "退订")

    confirm = load_chat_content(LIBRARY, set(load_library(LIBRARY).messages)).text(
        "opt_out_confirm")
    assert sent_texts(stack, customer) == [confirm]
    assert OPT_OUT_TAG in await _relation_tags(stack, customer)  # marked in WeCom
    assert OPT_OUT_TAG not in await _relation_tags(stack, other)
    [mark] = await _opt_out_marks(stack)
    assert (mark["userid"], mark["external_userid"]) == ("lina", customer)
    [row] = await kf_rows(stack, customer)
    assert (row.status, row.route) == ("replied", "opt_out")
    assert "1 SOP enrolment(s) ended" in row.reason and "on 1 relation(s)" in row.reason
    assert await _enrollments(stack, "new_customer_nurture") == {"active": 1, "exited": 1}

    # day 1 at 10:00 (Shanghai) the nurture step fires: for the other customer only
    sop = stack.runtime.services.sop
    day1 = datetime.now(UTC).astimezone(SHANGHAI).date() + timedelta(days=1)
    at = datetime(day1.year, day1.month, day1.day, 10, 1, tzinfo=SHANGHAI).astimezone(UTC)
    sop.clock = lambda: at
    await sop.tick("acme")
    assert stack.calls("externalcontact/add_msg_template")
    # the shipped 双12 content drop (2026-12-10 10:00 Shanghai) leaves them out too
    drop_at = datetime(2026, 12, 10, 10, 5, tzinfo=SHANGHAI).astimezone(UTC)
    sop.clock = lambda: drop_at
    for _ in range(2):  # the first pass records the drops' cursors
        await sop.singletons("acme")
    await sop.tick("acme")
    status, body = await stack.admin("/tasks?guide=lina")
    assert status == 200, body
    [drop] = [t for t in body["tasks"]
              if (t["source"], t["kind"]) == ("drop:double12_warmup", "guide_task")]
    assert drop["recipients"] == 1, drop
    sends = stack.calls("externalcontact/add_msg_template")
    assert all(s["body"]["external_userid"] == [other] for s in sends), sends

    # no SOP enrolls them again: one by one (refused, naming the field) or by audience
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"external_userid": customer, "guide": "lina"})
    assert status == 400 and body["field"] == "external_userid", body
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"audience": {"tags_any": ["门店扫码"]}})
    assert status == 200 and body["enrolled"] == 1, body
    assert await _enrollments(stack, "repurchase_care") == {"active": 1}

    # opting out again changes nothing and is still confirmed
    await customer_writes(stack, customer, "TD")
    assert sent_texts(stack, customer) == [confirm, confirm]
    assert len(await _opt_out_marks(stack)) == 1
    last = (await kf_rows(stack, customer))[-1]
    assert "opted out again: 0 SOP enrolment(s) ended" in last.reason


async def test_a_kf_customer_who_is_not_a_contact_is_recorded_not_tagged(stack: Stack) -> None:
    await customer_writes(stack, "wmKFoptout01", "退订")
    assert len(sent_texts(stack, "wmKFoptout01")) == 1
    assert stack.calls("externalcontact/mark_tag") == []
    [row] = await kf_rows(stack, "wmKFoptout01")
    assert row.route == "opt_out" and "tag not a contact" in row.reason
    # a later add of the same external_userid enrolls in no SOP; another customer's does
    for external_userid in ("wmKFoptout01", "wmKFstays001"):
        await control(stack, "simulate/add_contact",
                      {"userid": "lina", "external_userid": external_userid, "state": "gbS01"})
        await stack.runtime.drain()
    assert await _enrollments(stack, "new_customer_nurture") == {"active": 1}


async def test_hq_undoes_an_opt_out_on_the_customer_page(stack: Stack) -> None:
    """The customer page says they opted out; undoing it needs the box ticked, takes the tag
    off their relation in WeCom, and lets SOPs enroll them again; the admin API shows it."""
    customer = await _store_customer(stack, "孙悦")
    await customer_writes(stack, customer, "退订")
    status, body = await stack.admin(f"/customers/{customer}")
    assert status == 200 and body["opted_out_at"] is not None, body
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        page = f"/console/acme/customers/{customer}"
        _, html, _ = await console.get(page)
        assert 'id="opted-out"' in html and "已退订消息" in html
        _, listed, _ = await console.get("/console/acme/customers?q=孙悦")
        assert '<span class="chip"' in listed and ">已退订</span>" in listed
        form = {"_csrf": csrf_in(html)}
        status, _, _ = await console.post(f"{page}/opt-in", {"confirm": "yes"})
        assert status == 403  # no CSRF token
        status, refused, _ = await console.post(f"{page}/opt-in", form)
        assert status == 400 and "请勾选确认框" in refused  # not ticked: nothing changes
        assert (await stack.admin(f"/customers/{customer}"))[1]["opted_out_at"] is not None
        status, _, resp = await console.post(f"{page}/opt-in", {**form, "confirm": "yes"})
        assert status == 303 and resp.headers["Location"] == f"{page}?done=1"
        _, html, _ = await console.get(f"{page}?done=1")
        assert 'id="opted-out"' not in html and "已恢复该客户接收消息。" in html
        _, listed, _ = await console.get("/console/acme/customers?q=孙悦")
        assert ">已退订</span>" not in listed
        status, _, _ = await console.post("/console/acme/customers/wmNOBODY/opt-in",
                                          {**form, "confirm": "yes"})
        assert status == 404
    finally:
        await console.close()
    assert (await stack.admin(f"/customers/{customer}"))[1]["opted_out_at"] is None
    assert OPT_OUT_TAG not in await _relation_tags(stack, customer)  # off in WeCom too
    # SOPs may enroll them again
    status, body = await stack.admin("/sops/repurchase_care/enroll", method="POST",
                                     json={"external_userid": customer, "guide": "lina"})
    assert status in (200, 201) and body.get("enrollment_id"), body


async def test_the_admin_api_undoes_an_opt_out(stack: Stack) -> None:
    customer = await _store_customer(stack, "周宁")
    await customer_writes(stack, customer, "TD")
    status, body = await stack.admin(f"/customers/{customer}/opt-out", method="DELETE")
    assert status == 200 and body["opted_out_at"] is None, body
    assert body["external_userid"] == customer and "orders" in body  # the customer, as GET
    assert OPT_OUT_TAG not in await _relation_tags(stack, customer)
    status, again = await stack.admin(f"/customers/{customer}/opt-out", method="DELETE")
    assert status == 200 and again["opted_out_at"] is None  # idempotent
    status, body = await stack.admin("/customers/wmNOBODY/opt-out", method="DELETE")
    assert status == 404 and body["field"] == "external_userid", body
    status, body = await stack.admin(f"/customers/{customer}/opt-out", method="DELETE",
                                     tenant="beta", token="beta-admin-token")
    assert status == 404  # not beta's customer
    status, body = await stack.admin(f"/customers/{customer}/opt-out", method="DELETE",
                                     token="beta-admin-token")
    assert status == 403


async def test_an_opted_out_customer_asks_for_messages_again_in_kf(stack: Stack) -> None:
    """恢复订阅 from a customer who opted out undoes it as HQ's undo does (record gone, tag
    off their relation) and is confirmed; the same word from anyone else is not an opt-in,
    and 取消订阅 stays an opt-out."""
    texts = load_chat_content(LIBRARY, set(load_library(LIBRARY).messages))
    customer = await _store_customer(stack, "孙悦")
    await customer_writes(stack, customer, "退订")
    assert OPT_OUT_TAG in await _relation_tags(stack, customer)

    await customer_writes(stack, customer, "恢复订阅")
    assert sent_texts(stack, customer)[-1] == texts.text("opt_in_confirm")
    last = (await kf_rows(stack, customer))[-1]
    assert (last.status, last.route) == ("replied", "opt_in")
    assert "opt-out undone" in last.reason
    assert OPT_OUT_TAG not in await _relation_tags(stack, customer)
    status, body = await stack.admin(f"/customers/{customer}")
    assert status == 200 and body["opted_out_at"] is None

    await customer_writes(stack, customer, "订阅")  # no longer opted out: not an opt-in
    last = (await kf_rows(stack, customer))[-1]
    assert last.route != "opt_in" and "opt-out undone" not in last.reason
    await customer_writes(stack, customer, "取消订阅")
    assert (await kf_rows(stack, customer))[-1].route == "opt_out"
    assert OPT_OUT_TAG in await _relation_tags(stack, customer)

    # a 微信客服 customer who is no contact: the record under the kf id goes
    await customer_writes(stack, "wmKFoptin0001", "TD")
    await customer_writes(stack, "wmKFoptin0001", "订阅")
    last = (await kf_rows(stack, "wmKFoptin0001"))[-1]
    assert last.route == "opt_in" and "opt-out undone" in last.reason
    assert sent_texts(stack, "wmKFoptin0001")[-1] == texts.text("opt_in_confirm")


async def test_opt_out_then_opt_in_in_one_sync_ends_opted_in(stack: Stack) -> None:
    """Both messages come in one kf/sync_msg batch: the opt-in sees the opt-out before it."""
    customer = await _store_customer(stack, "孙悦")
    await customer_writes(stack, customer, "退订", deliver=False, drain=False)
    await customer_writes(stack, customer, "订阅")
    routes = [row.route for row in await kf_rows(stack, customer)]
    assert routes[-2:] == ["opt_out", "opt_in"], routes
    assert OPT_OUT_TAG not in await _relation_tags(stack, customer)
    status, body = await stack.admin(f"/customers/{customer}")
    assert status == 200 and body["opted_out_at"] is None


async def _opt_out_tag_is(stack: Stack, library: Path, old: str, new: str) -> None:
    edit(library / "chat" / "opt_out.toml", f'tag = "{old}"', f'tag = "{new}"')
    await reload(stack)


async def test_an_undo_takes_off_the_tag_the_opt_out_marked_after_the_file_changed(
        library_stack: tuple[Stack, Path]) -> None:
    """chat/opt_out.toml names another tag after an opt-out: the undo (HQ's, or the
    customer's own 恢复订阅) takes off the tag that opt-out marked, not the one named now,
    and leaves the customer's other tags alone; a record kept before the tag id was (NULL)
    has the tag named now taken off."""
    stack, library = library_stack
    customer = await _store_customer(stack, "孙悦")
    status, body = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                     json={"guide": "lina", "add": ["复购客"]})
    assert status == 200, body
    await customer_writes(stack, customer, "退订")
    assert {OPT_OUT_TAG, "复购客"} <= await _relation_tags(stack, customer)

    await _opt_out_tag_is(stack, library, OPT_OUT_TAG, "复购客")
    status, body = await stack.admin(f"/customers/{customer}/opt-out", method="DELETE")
    assert status == 200, body
    tags = await _relation_tags(stack, customer)
    assert OPT_OUT_TAG not in tags and "复购客" in tags, tags

    await _opt_out_tag_is(stack, library, "复购客", "沉睡客")
    await customer_writes(stack, customer, "退订")
    assert "沉睡客" in await _relation_tags(stack, customer)
    await _opt_out_tag_is(stack, library, "沉睡客", OPT_OUT_TAG)
    await customer_writes(stack, customer, "退订")  # opted out again: the same tag, no other
    assert OPT_OUT_TAG not in await _relation_tags(stack, customer)
    await customer_writes(stack, customer, "恢复订阅")
    assert (await kf_rows(stack, customer))[-1].route == "opt_in"
    assert await _relation_tags(stack, customer) == {"门店扫码", "复购客"}

    await customer_writes(stack, customer, "退订")
    assert OPT_OUT_TAG in await _relation_tags(stack, customer)
    async with stack.runtime.services.db.write() as s:  # as if recorded before 0055
        await s.execute(update(OptOut).where(OptOut.external_userid == customer)  # type: ignore[arg-type]
                        .values(tag_id=None))
    status, body = await stack.admin(f"/customers/{customer}/opt-out", method="DELETE")
    assert status == 200, body
    assert await _relation_tags(stack, customer) == {"门店扫码", "复购客"}
