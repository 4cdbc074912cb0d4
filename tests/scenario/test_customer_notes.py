"""跟进记录 over HTTP: a guide writes a follow-up note in the sidebar (signed session, CSRF);
the sidebar, the console's customer page, the timeline (kind note, no text) and the admin
API's notes list show it; bad input and strangers store nothing; the text is never logged."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from sqlalchemy import func, select

from guidebot.db.models_notes import CustomerNote
from tests.scenario.test_guide_chat import ask
from tests.support.console import customer_page
from tests.support.sidebar import sign_in
from tests.support.stack import Stack

NOTE = "想要敏感肌用的精华，下周到店试用"


async def _customer(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _notes_stored(stack: Stack) -> int:
    async with stack.runtime.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(CustomerNote))).scalar_one())


async def test_a_note_shows_in_the_sidebar_console_timeline_and_api(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    _, before = await guide.get(f"/customer/{customer}")
    assert before["notes"] == []
    with caplog.at_level(logging.DEBUG, logger="guidebot"):
        status, card = await guide.post(f"/customer/{customer}/notes",
                                        {"text": f"  {NOTE}  ", "follow_up_on": "2027-01-08"})
    assert status == 201, card
    [note] = card["notes"]
    assert note["text"] == NOTE and note["follow_up_on"] == "2027-01-08"
    assert note["guide"] == "lina" and note["guide_name"] not in ("", None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", note["when"])
    assert not any(NOTE in r.getMessage() for r in caplog.records)  # ids only
    assert any(f"note={note['id']}" in r.getMessage() for r in caplog.records)
    assert [e["kind"] for e in card["timeline"]][0] == "note"

    status, second = await guide.post(f"/customer/{customer}/notes", {"text": "已发优惠券"})
    assert status == 201 and [n["text"] for n in second["notes"]] == ["已发优惠券", NOTE]
    assert second["notes"][0]["follow_up_on"] is None
    _, again = await guide.get(f"/customer/{customer}")
    assert [n["id"] for n in again["notes"]] == [n["id"] for n in second["notes"]]

    status, timeline = await stack.admin(f"/customers/{customer}/timeline")
    assert status == 200, timeline
    written = [e for e in timeline["events"] if e["kind"] == "note"]
    assert [e["note_id"] for e in written] == [n["id"] for n in second["notes"]]
    assert all(e["guide"] == "lina" for e in written)
    assert NOTE not in json.dumps(timeline, ensure_ascii=False)  # that it was written, no text

    status, page = await stack.admin(f"/customers/{customer}/notes?limit=1")
    assert status == 200, page
    assert [n["text"] for n in page["notes"]] == ["已发优惠券"] and page["next"] is not None
    status, rest = await stack.admin(f"/customers/{customer}/notes?limit=1&before={page['next']}")
    assert status == 200 and [n["text"] for n in rest["notes"]] == [NOTE]
    assert rest["notes"][0]["follow_up_on"] == "2027-01-08" and rest["next"] is None
    status, refused = await stack.admin(f"/customers/{customer}/notes?limit=0")
    assert status == 400 and refused["field"] == "limit", refused

    html = await customer_page(stack, customer)
    table = html[html.index('<table id="notes">'):]
    table = unescape(table[:table.index("</table>")])
    assert NOTE in table and "已发优惠券" in table and "2027-01-08" in table
    timeline_rows = html[html.index('<table id="timeline">'):]
    assert '<tr data-kind="note">' in timeline_rows[:timeline_rows.index("</table>")]
    assert "写了跟进记录" in html
    assert "wrote a follow-up note" in await customer_page(stack, customer, "?lang=en")
    await guide.http.close()


async def test_every_guide_following_the_customer_reads_all_notes(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    await stack.sandbox.simulate_add_contact("acme", userid="chenjing", name="陈思",
                                             external_userid=customer)
    await stack.runtime.drain()
    lina = await sign_in(stack, "lina")
    assert (await lina.post(f"/customer/{customer}/notes", {"text": NOTE}))[0] == 201
    other = await sign_in(stack, "chenjing")
    status, card = await other.get(f"/customer/{customer}")
    assert status == 200, card
    assert [(n["guide"], n["text"]) for n in card["notes"]] == [("lina", NOTE)]
    await lina.http.close()
    await other.http.close()


async def test_strangers_and_other_tenants_can_neither_read_nor_write(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    lina = await sign_in(stack, "lina")
    assert (await lina.post(f"/customer/{customer}/notes", {"text": NOTE}))[0] == 201
    stranger = await sign_in(stack, "wangfang")  # acme's guide, not following this customer
    assert (await stranger.get(f"/customer/{customer}"))[0] == 404
    assert (await stranger.post(f"/customer/{customer}/notes", {"text": "x"}))[0] == 404
    beta = await sign_in(stack, "lina", tenant="beta")
    assert (await beta.post(f"/customer/{customer}/notes", {"text": "x"}))[0] == 404
    async with stack.http.post(f"{stack.bot_url}/sidebar/acme/customer/{customer}/notes",
                               json={"text": "x"}, headers={"X-CSRF-Token": beta.csrf},
                               cookies={"gb_sidebar": beta.cookie()}) as resp:
        assert resp.status == 401  # beta's session does not open acme's sidebar
    status, body = await stack.admin(f"/customers/{customer}/notes", tenant="beta")
    assert status == 404 and body["field"] == "external_userid", body
    assert (await stack.admin("/customers/wmNOBODY/notes"))[0] == 404
    assert await _notes_stored(stack) == 1
    for g in (lina, stranger, beta):
        await g.http.close()


@pytest.mark.parametrize("body", [
    {"text": ""}, {"text": "   "}, {}, {"text": 5}, {"text": "好" * 501},
    {"text": "ok", "follow_up_on": "2027-13-01"}, {"text": "ok", "follow_up_on": "明天"},
    {"text": "ok", "follow_up_on": 20270108}, {"text": "ok", "follow_up_on": "2027-1-8"},
])
async def test_bad_input_is_refused_and_nothing_is_stored(stack: Stack,
                                                         body: dict[str, object]) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    status, answer = await guide.post(f"/customer/{customer}/notes", body)
    assert status == 400, answer
    field = "follow_up_on" if "follow_up_on" in body else "text"
    assert answer["error"].startswith(f"{field}:"), answer
    # coded, so the sidebar words it in Chinese (sidebar.html's refusal.<code>)
    assert answer["code"] == ("note.date" if field == "follow_up_on" else
                              "note.text_long" if body.get("text") == "好" * 501 else
                              "note.text_empty"), answer
    assert await _notes_stored(stack) == 0
    await guide.http.close()


async def test_csrf_is_required_and_500_characters_are_allowed(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    for csrf in ("", "forged"):
        assert (await guide.post(f"/customer/{customer}/notes", {"text": "x"},
                                 csrf=csrf))[0] == 403
    assert await _notes_stored(stack) == 0
    status, card = await guide.post(f"/customer/{customer}/notes", {"text": "好" * 500})
    assert status == 201 and len(card["notes"][0]["text"]) == 500
    await guide.http.close()


async def test_a_follow_up_day_is_in_that_days_tasks(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    later = await _customer(stack, "lina", "王芳")
    guide = await sign_in(stack, "lina")
    for who, day in ((customer, "2027-01-08"), (customer, "2027-01-08"), (later, "2027-01-09")):
        status, _ = await guide.post(f"/customer/{who}/notes",
                                     {"text": NOTE, "follow_up_on": day})
        assert status == 201
    chat = stack.runtime.services.guide_chat
    chat.clock = lambda: datetime(2027, 1, 7, 17, 0, tzinfo=UTC)  # 01-08 01:00 in Shanghai
    tasks = await ask(stack, "今日任务")
    assert tasks == "今日跟进（1 位客户，来自跟进记录）：陈思", tasks
    chat.clock = lambda: datetime(2027, 1, 7, 15, 0, tzinfo=UTC)  # 01-07 23:00 in Shanghai
    assert "今天没有待办任务" in await ask(stack, "今日任务")
    chat.clock = lambda: datetime(2027, 1, 9, 3, 0, tzinfo=UTC)
    assert "王芳" in await ask(stack, "今日任务", guide="lina")
    assert "今天没有待办任务" in await ask(stack, "今日任务", guide="wangfang")
    await guide.http.close()
