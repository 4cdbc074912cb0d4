"""Customer transfers (在职继承 / 离职继承) over HTTP against the sandbox: HQ moves a guide's
customers through the admin API or the console; WeCom (the sandbox) starts each transfer,
completes it after 24 hours by its clock, or the customer refuses; guidebot asks
`transfer_result`, records each customer's state and moves the relation and the exclusive
binding to the takeover guide, once, whatever callbacks WeCom sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from guidebot.db.models import FollowEvent
from guidebot.sandbox import transfers as sandbox_transfers
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack

DAY = 86_400
NOW = timedelta(0)  # check every waiting pair, however recently it was asked about


async def _add(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _transfer(stack: Stack, **body: Any) -> tuple[int, Any]:
    return await stack.admin("/transfers", method="POST", json=body)


async def _check(stack: Stack) -> int:
    return await stack.runtime.services.transfers.check("acme", every=NOW)


async def _settle_day(stack: Stack) -> None:
    """24 hours pass in the sandbox: due transfers complete and their callbacks arrive."""
    await stack.sandbox.advance(DAY + 60)
    await stack.runtime.drain()


async def _follows(stack: Stack, customer: str) -> dict[str, str]:
    _, view = await stack.admin(f"/customers/{customer}")
    return {g["userid"]: g["status"] for g in view["guides"]}


async def _exclusive(stack: Stack, customer: str) -> str | None:
    """The guide of the customer's latest binding (the sandbox's clock runs ahead after
    `_settle_day`, so a binding moved then starts in the app's future: read the history)."""
    _, view = await stack.admin(f"/customers/{customer}")
    bindings = view["bindings"]
    return str(bindings[-1]["guide"]) if bindings and not bindings[-1]["ended_at"] else None


async def _ended(stack: Stack, customer: str) -> list[tuple[str, str]]:
    _, view = await stack.admin(f"/customers/{customer}")
    return [(b["guide"], b["end_reason"]) for b in view["bindings"] if b["ended_at"]]


async def _events(stack: Stack, customer: str) -> list[tuple[str, str]]:
    async with stack.runtime.services.db.read() as s:
        rows = await s.execute(select(FollowEvent.guide, FollowEvent.action)
                               .where(FollowEvent.external_userid == customer)
                               .order_by(FollowEvent.id))  # type: ignore[arg-type]
        return [(str(g), str(a)) for g, a in rows.all()]


def _states(transfer: dict[str, Any]) -> dict[str, str]:
    return {c["external_userid"]: c["state"] for c in transfer["customer_list"]}


async def test_an_on_job_transfer_completes_after_24_hours_and_moves_relation_and_binding(
        stack: Stack) -> None:
    first, second = await _add(stack, "lina", "王芳"), await _add(stack, "lina", "李雷")
    await _add(stack, "mia", "韩梅")  # mia is a guide guidebot knows
    assert await _exclusive(stack, first) == "lina"
    status, body = await _transfer(stack, kind="on_job", handover="lina", takeover="mia",
                                   message="您好，之后由韩梅为您服务")
    assert status == 201, body
    assert body["customers"] == 2 and body["states"]["waiting"] == 2, body
    assert _states(body) == {first: "waiting", second: "waiting"}
    due = datetime.fromisoformat(body["customer_list"][0]["takeover_at"])
    assert timedelta(hours=23) < due - datetime.now(UTC) <= timedelta(hours=24)
    (call,) = stack.calls("externalcontact/transfer_customer")
    assert call["body"] == {"handover_userid": "lina", "takeover_userid": "mia",
                            "external_userid": sorted([first, second]),
                            "transfer_success_msg": "您好，之后由韩梅为您服务"}

    assert await _check(stack) == 0  # WeCom: still waiting
    assert await _follows(stack, first) == {"lina": "active"}
    status, again = await _transfer(stack, kind="on_job", handover="lina", takeover="mia")
    assert status == 400 and "already being transferred" in again["reason"], again

    await _settle_day(stack)  # the handover's DELETE_BY_TRANSFER callbacks arrive
    assert await _check(stack) == 2
    (told,) = [m for m in stack.sandbox.state("acme")["app_messages"] if m["userid"] == "mia"]
    text = told["content"]["content"]
    assert text.startswith("lina的 2 位客户已转由您跟进："), text
    assert "王芳" in text and "李雷" in text
    _, done = await stack.admin(f"/transfers/{body['id']}")
    assert _states(done) == {first: "done", second: "done"}
    assert all(c["takeover_at"] for c in done["customer_list"])
    for customer in (first, second):
        assert await _follows(stack, customer) == {"lina": "transferred", "mia": "active"}
        assert await _exclusive(stack, customer) == "mia"
        assert await _ended(stack, customer) == [("lina", "transferred")]
    events = await _events(stack, first)
    assert events.count(("mia", "transferred_in")) == 1, events
    assert await _check(stack) == 0  # nothing waits: nothing asked, nothing moved again
    assert await _events(stack, first) == events
    assert len([m for m in stack.sandbox.state("acme")["app_messages"]
                if m["userid"] == "mia"]) == 1  # told once
    _, listed = await stack.admin("/transfers")
    assert [t["id"] for t in listed["transfers"]] == [body["id"]]
    assert listed["transfers"][0]["states"]["done"] == 2 and listed["next"] is None


async def test_the_takeover_guide_hears_how_many_more_than_the_ten_named(
        stack: Stack) -> None:
    names = [f"客户{n:02d}" for n in range(13)]
    for name in names:
        await _add(stack, "lina", name)
    await _add(stack, "mia", "韩梅")
    status, body = await _transfer(stack, kind="on_job", handover="lina", takeover="mia")
    assert status == 201 and body["customers"] == 13, body
    await _settle_day(stack)
    assert await _check(stack) == 13
    (told,) = [m for m in stack.sandbox.state("acme")["app_messages"] if m["userid"] == "mia"]
    first_line = told["content"]["content"].split("\n")[0]
    head = "lina的 13 位客户已转由您跟进："
    assert first_line.startswith(head) and first_line.endswith("……还有 3 位"), first_line
    named = first_line[len(head):-len("……还有 3 位")].split("、")
    assert len(named) == 10 and set(named) < set(names), named


async def test_an_active_guides_customers_include_those_guidebot_never_saw_added(
        stack: Stack) -> None:
    known = await _add(stack, "lina", "王芳")
    stack.sandbox.seed("acme", [{"userid": "lina", "external_userid": "wmOLDBASE01",
                                 "name": "老客户"}])  # there before guidebot, no callback
    await _add(stack, "mia", "韩梅")
    status, body = await _transfer(stack, kind="on_job", handover="lina", takeover="mia")
    assert status == 201 and _states(body) == {known: "waiting", "wmOLDBASE01": "waiting"}
    await _settle_day(stack)
    assert await _check(stack) == 2
    assert await _follows(stack, "wmOLDBASE01") == {"lina": "transferred", "mia": "active"}
    assert await _follows(stack, known) == {"lina": "transferred", "mia": "active"}


async def test_refused_transfers_store_nothing_and_say_why(stack: Stack) -> None:
    mine = await _add(stack, "lina", "王芳")
    other = await _add(stack, "mia", "韩梅")
    cases = [
        ({"kind": "on_job", "handover": "lina", "takeover": "lina"}, "same guide"),
        ({"kind": "on_job", "handover": "lina", "takeover": "nobody"}, "no guide nobody"),
        ({"kind": "on_job", "handover": "nobody", "takeover": "mia"}, "no guide nobody"),
        ({"kind": "on_job", "handover": "lina", "takeover": "mia",
          "external_userids": [mine, other]}, "not the handover guide's"),
        ({"kind": "resigned", "handover": "lina", "takeover": "mia", "message": "hi"},
         "sends no message"),
        ({"kind": "on_job", "handover": "lina", "takeover": "mia", "message": "字" * 201},
         "at most 200"),
        ({"kind": "moved", "handover": "lina", "takeover": "mia"}, "kind"),
        ({"kind": "resigned", "handover": "lina", "takeover": "mia"}, "none to transfer"),
    ]
    for body, said in cases:
        status, answer = await _transfer(stack, **body)
        assert status == 400 and said in answer["error"], (body, answer)
    _, listed = await stack.admin("/transfers")
    assert listed["transfers"] == []
    assert stack.calls("externalcontact/transfer_customer") == []
    status, _ = await stack.admin("/transfers/1")
    assert status == 404
    status, _ = await stack.admin("/transfers", tenant="beta", token="beta-admin-token")
    assert status == 200
    status, _ = await stack.admin("/transfers", token="beta-admin-token")
    assert status in (401, 403)


async def test_a_resigned_guides_customers_come_from_wecoms_unassigned_list(
        stack: Stack) -> None:
    first, second = await _add(stack, "ahui", "王芳"), await _add(stack, "ahui", "李雷")
    await _add(stack, "qing", "韩梅")
    await stack.sandbox.set_directory("acme", {
        "departments": [{"id": 1, "name": "acme", "parentid": 0}],
        "members": [{"userid": "ahui", "name": "陈阿辉", "department": [1], "status": 5},
                    {"userid": "qing", "name": "王青", "department": [1]}]}, deliver=True)
    await stack.runtime.drain()
    status, left = await stack.admin("/transfers/unassigned")
    assert status == 200, left
    assert [(g["handover"], g["customers"]) for g in left["guides"]] == [("ahui", 2)]
    assert sorted(left["guides"][0]["external_userids"]) == sorted([first, second])
    status, body = await _transfer(stack, kind="on_job", handover="qing", takeover="ahui")
    assert status == 400 and "has left" in body["reason"], body  # a leaver takes no one

    status, body = await _transfer(stack, kind="resigned", handover="ahui", takeover="qing",
                                   key="ahui-leaves")
    assert status == 201 and _states(body) == {first: "waiting", second: "waiting"}, body
    assert len(stack.calls("externalcontact/resigned/transfer_customer")) == 1
    status, replay = await _transfer(stack, kind="resigned", handover="ahui", takeover="qing",
                                     key="ahui-leaves")
    assert status == 200 and replay["id"] == body["id"]  # the same key: the stored result
    assert len(stack.calls("externalcontact/resigned/transfer_customer")) == 1
    _, left = await stack.admin("/transfers/unassigned")
    assert left["guides"] == []

    await _settle_day(stack)
    assert await _check(stack) == 2
    for customer in (first, second):
        assert await _follows(stack, customer) == {"ahui": "transferred", "qing": "active"}
        assert await _exclusive(stack, customer) == "qing"


async def test_a_refusal_a_full_takeover_and_the_90_day_rule_are_kept_per_customer(
        stack: Stack) -> None:
    first, second = await _add(stack, "lina", "王芳"), await _add(stack, "lina", "李雷")
    await _add(stack, "mia", "韩梅")
    await _add(stack, "zoe", "赵敏")
    _, body = await _transfer(stack, kind="on_job", handover="lina", takeover="mia")
    refused = await stack.sandbox.refuse_transfer("acme", first, "mia", "customer_refused")
    assert refused["delivery"]["status"] == 200
    await stack.runtime.drain()
    await _settle_day(stack)
    assert await _check(stack) == 1
    _, done = await stack.admin(f"/transfers/{body['id']}")
    assert _states(done) == {first: "refused", second: "done"}
    assert await _follows(stack, first) == {"lina": "active"}
    assert await _exclusive(stack, first) == "lina"
    assert ("mia", "transfer_failed") in await _events(stack, first)

    # second: transferred once; once more back, then a third time is refused by WeCom
    _, back = await _transfer(stack, kind="on_job", handover="mia", takeover="lina",
                              external_userids=[second])
    assert _states(back) == {second: "waiting"}
    await _settle_day(stack)
    assert await _check(stack) == 1
    _, third = await _transfer(stack, kind="on_job", handover="lina", takeover="mia",
                               external_userids=[second])
    assert _states(third) == {second: "failed"}
    assert third["customer_list"][0]["errcode"] == 40128
    assert await _exclusive(stack, second) == "lina"

    sandbox_transfers.set_full(stack.sandbox.tenant("acme"), "zoe", True)
    _, full = await _transfer(stack, kind="on_job", handover="lina", takeover="zoe",
                              external_userids=[first])
    assert _states(full) == {first: "failed"}
    assert full["customer_list"][0]["errcode"] == 40099


async def test_console_lists_unassigned_customers_starts_and_shows_a_transfer(
        stack: Stack) -> None:
    first = await _add(stack, "ahui", "王芳")
    await _add(stack, "qing", "韩梅")
    await stack.sandbox.set_directory("acme", {
        "departments": [{"id": 1, "name": "acme", "parentid": 0}],
        "members": [{"userid": "ahui", "name": "陈阿辉", "department": [1], "status": 5},
                    {"userid": "qing", "name": "王青", "department": [1]}]}, deliver=True)
    await stack.runtime.drain()
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, board, _ = await console.get("/console/acme/guides")
        ahui = re.search(r'data-guide="ahui">.*?</tr>', board, re.S)
        assert ahui and 'data-left="1"' in ahui.group(0) and "已离职" in ahui.group(0)
        qing = re.search(r'data-guide="qing">.*?</tr>', board, re.S)
        assert qing and 'data-left="1"' not in qing.group(0)
        status, html, _ = await console.get("/console/acme/transfers")
        assert status == 200
        assert "离职导购的待分配客户" in html and 'data-handover="ahui"' in html
        row = re.search(r'data-handover="ahui">.*?</tr>', html, re.S)
        assert row and "陈阿辉" in row.group(0) and '<td class="n">1</td>' in row.group(0)
        status, refused, _ = await console.post("/console/acme/transfers", {
            "_csrf": csrf_in(html), "kind": "resigned", "handover": "ahui",
            "takeover": "ahui"})
        assert status == 400 and "接替导购不能是原跟进导购本人" in refused
        status, _, resp = await console.post("/console/acme/transfers", {
            "_csrf": csrf_in(html), "kind": "resigned", "handover": "ahui",
            "takeover": "qing"})
        assert status == 303, status
        location = resp.headers["Location"]
        assert re.fullmatch(r"/console/acme/transfers/\d+\?started=1", location)
        status, page, _ = await console.get(location)
        assert status == 200 and "已提交转接" in page
        assert f'data-customer="{first}"' in page and "王芳" in page
        assert 'data-state="waiting">等待接替' in page
        await stack.sandbox.advance(DAY + 60)
        await stack.runtime.drain()
        status, _, resp = await console.post("/console/acme/transfers/check",
                                             {"_csrf": csrf_in(page)})
        assert status == 303 and resp.headers["Location"].endswith("?checked=1")
        status, page, _ = await console.get(location.split("?")[0] + "?lang=en")
        assert 'data-state="done">Done' in page
        status, listing, _ = await console.get("/console/acme/transfers")
        assert "No resigned guide has customers waiting" in listing  # lang kept in a cookie
        assert re.search(r'data-state="done">1<', listing)
        status, _, _ = await console.post("/console/acme/transfers",
                                          {"_csrf": "forged", "kind": "resigned",
                                           "handover": "ahui", "takeover": "qing"})
        assert status == 403
    finally:
        await console.close()
    assert await _follows(stack, first) == {"ahui": "transferred", "qing": "active"}


async def test_a_transfer_seen_done_before_its_callback_is_recorded_once(
        stack: Stack) -> None:
    customer = await _add(stack, "lina", "王芳")
    await _add(stack, "mia", "韩梅")
    await _transfer(stack, kind="on_job", handover="lina", takeover="mia")
    await stack.sandbox.advance(DAY + 60, deliver=False)  # WeCom's callback is late
    assert await _check(stack) == 1
    assert await _follows(stack, customer) == {"lina": "transferred", "mia": "active"}
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_external_contact",
        "UserID": "lina", "ExternalUserID": customer, "Source": "DELETE_BY_TRANSFER"})
    assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    events = await _events(stack, customer)
    assert events.count(("lina", "transferred")) == 1, events
    assert events.count(("mia", "transferred_in")) == 1, events
    assert await _exclusive(stack, customer) == "mia"
    assert await _ended(stack, customer) == [("lina", "transferred")]
