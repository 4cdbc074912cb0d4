"""客户资料 over HTTP: HQ's profile fields (content_library/profile_fields.toml) set through the
admin API (CRM), by a guide in the sidebar (only a customer they follow, not HQ's fields) and
by HQ on the console's customer page (CSRF form); refusals coded and naming the field, nothing
stored; the timeline's `field` events, the customers CSV's columns; a library edit that
removes a field hides its value, one that removes an option marks the value as stale."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from tests.support.console import Console, csrf_in, customer_page
from tests.support.library_edits import edit, library_errors, library_stack_fixture, reload
from tests.support.sidebar import sign_in
from tests.support.stack import Stack

__all__ = ["library_stack_fixture"]

GOOD = {"skin": "油性", "member_card": "VIP-0001", "categories": ["精华", "口红"],
        "last_visit": "2026-12-01"}


async def _customer(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


def _by_id(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in answer["fields"]}


async def test_hq_sets_fields_through_the_api_and_refusals_name_the_field(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    status, empty = await stack.admin(f"/customers/{customer}/fields")
    assert status == 200, empty
    assert [f["id"] for f in empty["fields"]] == ["skin", "size", "member_card", "categories",
                                                  "last_visit"]
    assert all(f["value"] is None and f["set_by"] is None for f in empty["fields"])
    assert _by_id(empty)["skin"]["options"] == ["干性", "油性", "混合", "敏感"]

    status, body = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                     json={"values": GOOD})
    assert status == 200, body
    fields = _by_id(body)
    assert fields["skin"]["value"] == "油性" and fields["member_card"]["value"] == "VIP-0001"
    assert fields["categories"]["value"] == ["口红", "精华"]  # in the options' order
    assert fields["last_visit"]["value"] == "2026-12-01" and fields["size"]["value"] is None
    assert fields["skin"]["set_by"] == "hq" and fields["skin"]["set_by_name"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", fields["skin"]["when"])

    refusals = [({"skin": "油皮"}, "values.skin", "profile.choice"),
                ({"categories": ["精华", "香水"]}, "values.categories", "profile.multi"),
                ({"categories": "精华"}, "values.categories", "profile.multi"),
                ({"last_visit": "2026-02-30"}, "values.last_visit", "profile.date"),
                ({"last_visit": "2026-W01-1"}, "values.last_visit", "profile.date"),
                ({"member_card": "x" * 33}, "values.member_card", "profile.text"),
                ({"member_card": 12}, "values.member_card", "profile.text"),
                ({"size": "M", "nope": "1"}, "values.nope", "profile.unknown_field")]
    for values, field, code in refusals:
        status, refused = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                            json={"values": values})
        assert (status, refused["field"], refused.get("code")) == (400, field, code), refused
    status, refused = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                        json={"values": {"skin": 1.5}})
    assert status == 400 and refused["field"] == "values.skin", refused
    status, refused = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                        json={"values": {"Skin!": "x"}})
    assert status == 400 and refused["field"].startswith("values"), refused
    _, after = await stack.admin(f"/customers/{customer}/fields")
    assert after == body  # nothing stored by any refused request (size stayed unset too)

    status, cleared = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                        json={"values": {"skin": None, "categories": []}})
    assert status == 200, cleared
    assert _by_id(cleared)["skin"]["value"] is None and _by_id(cleared)["skin"]["set_by"] is None
    assert _by_id(cleared)["categories"]["value"] is None
    assert _by_id(cleared)["member_card"]["value"] == "VIP-0001"  # left out: as it was

    status, missing = await stack.admin("/customers/wm-nobody/fields")
    assert status == 404 and missing["field"] == "external_userid", missing
    status, missing = await stack.admin("/customers/wm-nobody/fields", method="PUT",
                                        json={"values": {"skin": "干性"}})
    assert status == 404 and missing.get("code") == "customer.unknown", missing

    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        doc = await resp.json()
    put = doc["paths"]["/api/v1/{tenant}/customers/{external_userid}/fields"]["put"]
    assert "FieldsSet" in json.dumps(put["requestBody"])
    assert "CustomerFields" in json.dumps(put["responses"]["200"])


async def test_a_guide_fills_fields_in_the_sidebar_and_hq_sees_them(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    theirs = await _customer(stack, "zhaolei", "王芳")
    status, _ = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                  json={"values": {"member_card": "VIP-0002"}})
    assert status == 200
    guide = await sign_in(stack, "lina")
    try:
        _, card = await guide.get(f"/customer/{customer}")
        assert _by_id(card)["member_card"]["value"] == "VIP-0002"
        assert _by_id(card)["member_card"]["guides_edit"] is False

        status, card = await guide.post(f"/customer/{customer}/fields", {"values": {
            "skin": "干性", "size": "M", "categories": ["围巾"], "last_visit": "2026-12-05",
            "member_card": "VIP-0002"}})  # HQ's field sent back unchanged: fine
        assert status == 200, card
        fields = _by_id(card)
        assert (fields["skin"]["value"], fields["size"]["value"]) == ("干性", "M")
        assert fields["skin"]["set_by"] == "lina" and fields["skin"]["set_by_name"]
        assert fields["member_card"]["set_by"] == "hq"  # untouched
        kinds = [(e["kind"], e.get("field"), e["guide"]) for e in card["timeline"]]
        assert ("field", "skin", "lina") in kinds and ("field", "member_card", None) in kinds

        status, refused = await guide.post(f"/customer/{customer}/fields",
                                           {"values": {"member_card": "VIP-9999"}})
        assert (status, refused["code"]) == (400, "profile.locked"), refused
        assert refused["params"]["label"] == "会员卡号"
        status, refused = await guide.post(f"/customer/{customer}/fields",
                                           {"values": {"size": "XXL"}})
        assert (status, refused["code"]) == (400, "profile.choice"), refused
        status, refused = await guide.post(f"/customer/{customer}/fields", {"values": ["x"]})
        assert (status, refused["code"]) == (400, "profile.values"), refused
        status, refused = await guide.post(f"/customer/{theirs}/fields",
                                           {"values": {"skin": "干性"}})
        assert (status, refused["code"]) == (404, "sidebar.customer_unknown"), refused
        status, refused = await guide.post(f"/customer/{customer}/fields",
                                           {"values": {"skin": "油性"}}, csrf="wrong")
        assert status == 403, refused
        _, after = await guide.get(f"/customer/{customer}")
        assert _by_id(after)["skin"]["value"] == "干性"  # nothing stored by a refusal
        assert _by_id(after)["member_card"]["value"] == "VIP-0002"
        _, theirs_now = await stack.admin(f"/customers/{theirs}/fields")
        assert all(f["value"] is None for f in theirs_now["fields"])
    finally:
        await guide.http.close()

    status, timeline = await stack.admin(f"/customers/{customer}/timeline")
    assert status == 200, timeline
    events = [e for e in timeline["events"] if e["kind"] == "field"]
    assert {(e["field"], e["set_by"]) for e in events} == {
        ("skin", "lina"), ("size", "lina"), ("categories", "lina"), ("last_visit", "lina"),
        ("member_card", "hq")}
    assert {e["field_label"] for e in events} >= {"肤质", "会员卡号"}
    assert "VIP-0002" not in json.dumps(timeline, ensure_ascii=False)  # which field, no value

    html = unescape(await customer_page(stack, customer))
    form = html[html.index('<form method="post" action="/console/acme/customers/'
                           f'{customer}/fields"'):]
    form = form[:form.index("</form>")]
    skin = form[form.index('data-field="skin"'):form.index('data-field="size"')]
    assert '<option value="干性" selected>' in skin
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", skin)
    assert "VIP-0002" in form and 'value="2026-12-05"' in form
    assert 'value="围巾" checked' in form


async def test_hq_edits_fields_on_the_console_and_exports_them(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    await _customer(stack, "lina", "李雷")  # no values: empty cells
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        path = f"/console/acme/customers/{customer}"
        _, html, _ = await console.get(path)
        token = csrf_in(html)
        fields = "skin,size,member_card,categories,last_visit"
        form = [("_csrf", token), ("_fields", fields), ("f.skin", "混合"), ("f.size", ""),
                ("f.member_card", " VIP-0003 "), ("f.categories", "防晒"),
                ("f.categories", "口红"), ("f.last_visit", "2026-11-30")]
        async with console.http.post(console.url(f"{path}/fields"), data=form,
                                     allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            assert resp.headers["Location"].startswith(f"{path}?fields=1")
        status, body = await stack.admin(f"/customers/{customer}/fields")
        got = {f["id"]: (f["value"], f["set_by"]) for f in body["fields"]}
        assert got == {"skin": ("混合", "hq"), "size": (None, None),
                       "member_card": ("VIP-0003", "hq"), "categories": (["口红", "防晒"], "hq"),
                       "last_visit": ("2026-11-30", "hq")}

        bad = [("_csrf", token), ("_fields", "last_visit"), ("f.last_visit", "30/11/2026")]
        async with console.http.post(console.url(f"{path}/fields"), data=bad,
                                     allow_redirects=False) as resp:
            page = unescape(await resp.text())
            assert resp.status == 400
            assert "上次到店" in page  # worded from refusal.profile.date
        async with console.http.post(console.url(f"{path}/fields"), allow_redirects=False,
                                     data=[("_fields", "skin"), ("f.skin", "干性")]) as resp:
            assert resp.status in (400, 403)  # no CSRF token: refused
        _, body = await stack.admin(f"/customers/{customer}/fields")
        assert _by_id(body)["skin"]["value"] == "混合"

        status, text, _ = await console.get("/console/acme/customers?format=csv")
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert list(rows[0])[-5:] == ["field:skin", "field:size", "field:member_card",
                                      "field:categories", "field:last_visit"]
        mine = next(r for r in rows if r["external_userid"] == customer)
        assert (mine["field:skin"], mine["field:categories"], mine["field:size"]) == (
            "混合", "口红;防晒", "")
        other = next(r for r in rows if r["external_userid"] != customer)
        assert other["field:skin"] == "" and other["field:last_visit"] == ""
    finally:
        await console.close()


async def test_a_library_edit_hides_a_removed_field_and_marks_a_removed_option(
        library_stack: tuple[Stack, Path]) -> None:
    stack, library = library_stack
    customer = await _customer(stack, "lina", "陈思")
    status, _ = await stack.admin(f"/customers/{customer}/fields", method="PUT", json={
        "values": {"skin": "敏感", "size": "XL", "categories": ["围巾", "精华"]}})
    assert status == 200
    path = library / "profile_fields.toml"
    edit(path, 'options = ["干性", "油性", "混合", "敏感"]', 'options = ["干性", "油性", "混合"]')
    edit(path, '"防晒", "围巾"]', '"防晒"]')
    edit(path, 'id = "size"', 'id = "shoe_size"')
    path.write_text(path.read_text("utf-8") + '\n[[fields]]\nid = "height"\nlabel = "身高"\n'
                    'kind = "number"\n', "utf-8")
    await reload(stack)
    for good, shown in ((165.5, 165.5), ("170", 170), (-3, -3)):
        status, body = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                         json={"values": {"height": good}})
        assert status == 200 and _by_id(body)["height"]["value"] == shown, body
    for bad in ("高", True, "1e3", [1]):
        status, refused = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                            json={"values": {"height": bad}})
        assert (status, refused.get("code")) == (400, "profile.number"), (bad, refused)
    status, body = await stack.admin(f"/customers/{customer}/fields")
    fields = _by_id(body)
    assert "size" not in fields and fields["shoe_size"]["value"] is None  # hidden, not lost
    assert (fields["skin"]["value"], fields["skin"]["stale"]) == ("敏感", ["敏感"])
    assert fields["categories"]["value"] == ["精华", "围巾"]
    assert fields["categories"]["stale"] == ["围巾"]
    status, timeline = await stack.admin(f"/customers/{customer}/timeline")
    assert "size" not in {e.get("field") for e in timeline["events"]}

    guide = await sign_in(stack, "lina")
    try:  # a stale value may be sent back as it is, not chosen anew
        status, card = await guide.post(f"/customer/{customer}/fields", {"values": {
            "skin": "敏感", "categories": ["围巾", "精华", "口红"]}})
        assert status == 200, card
        assert _by_id(card)["categories"]["value"] == ["口红", "精华", "围巾"]
        assert _by_id(card)["skin"]["set_by"] == "hq"  # unchanged: who set it stays
        status, refused = await guide.post(f"/customer/{customer}/fields",
                                           {"values": {"skin": "油性"}})
        assert status == 200, refused
        status, refused = await guide.post(f"/customer/{customer}/fields",
                                           {"values": {"skin": "敏感"}})
        assert (status, refused["code"]) == (400, "profile.choice"), refused
    finally:
        await guide.http.close()
    html = unescape(await customer_page(stack, customer))
    assert "围巾 （已不在选项中）" in html or "围巾 (no longer an option)" in html

    edit(path, 'id = "shoe_size"', 'id = "shoe_size"\nkind_of = 1')  # invalid: refused
    await reload(stack)
    problems = await library_errors(stack)
    assert any("profile_fields.toml" in str(p) for p in problems), problems
    status, page, _ = await Console(stack).get(
        "/console/acme/content", headers={"Authorization": "Bearer acme-admin-token"})
    assert status == 200  # the content page lists the file's error and the fields in force
    shown = re.search(r'<ul id="profile-field-errors">(.*?)</ul>', page, re.S)
    assert shown is not None and "unknown key" in unescape(shown.group(1)), page
    assert "profile_fields.toml:" in shown.group(1) and "kind_of" in unescape(shown.group(1))
    assert '<tr data-field="shoe_size">' in page and '<tr data-field="height">' in page
    status, body = await stack.admin(f"/customers/{customer}/fields")
    assert "shoe_size" in _by_id(body)  # the content in force stays

    async with stack.runtime.services.db.read() as s:  # the removed field's value is kept
        from guidebot.db.repo import profile_fields as repo

        stored = await repo.of_customer(s, tenant="acme", external_userid=customer)
    assert {r.field: r.value for r in stored}["size"] == "XL"


@pytest.mark.parametrize(("toml", "line", "says"), [
    ('[[fields]]\nid = "skin"\nlabel = "肤质"\nkind = "choice"\n', 2, "options"),
    ('[[fields]]\nid = "a"\nlabel = "甲"\nkind = "text"\n\n[[fields]]\nid = "b"\n'
     'label = "乙"\nkind = "colour"\n', 9, "kind"),
    ('[[fields]]\nid = "Bad-Id"\nlabel = "甲"\nkind = "date"\n', 2, "id"),
    ('[[fields]]\nid = "a"\nlabel = "甲"\nkind = "date"\nmax_length = 10\n', 5, "max_length"),
    ('[[fields]]\nid = "a"\nlabel = "甲"\nkind = "text"\n[[fields]]\nid = "a"\n'
     'label = "乙"\nkind = "text"\n', 6, "twice"),
    ('[[fields]]\nid = "a"\nlabel = "甲"\nkind = "multi"\noptions = ["x", "x"]\n'
     'guides_edit = "yes"\n', 5, "twice"),
])
def test_check_names_the_file_and_line(tmp_path: Path, toml: str, line: int, says: str) -> None:
    from tests.support.stack import library_copy

    root = library_copy(tmp_path, {"profile_fields.toml": toml})
    with pytest.raises(ContentInvalid) as caught:
        load_library(root)
    found = [p for p in caught.value.problems if p.file.name == "profile_fields.toml"]
    assert any(p.line == line and says in p.message for p in found), found
