"""客户分群 by 客户资料 over HTTP: values set through PUT /customers/{id}/fields, segments by a
choice, a multi (options holding quotes and %), a date range and a number bound find exactly
their customers (numbers compared as numbers, not text), a drop to such a segment reaches only
them through the sandbox, bad field conditions are refused coded, the segment CSV carries the
field columns, and a field or option removed from profile_fields.toml since is named."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.scenario.test_hq_drops import NOW, _customer
from tests.scenario.test_segments import _members, _sends
from tests.support.console import Console, csrf_in
from tests.support.library_edits import edit, library_stack_fixture, reload
from tests.support.stack import Stack

__all__ = ["library_stack_fixture"]

CATEGORIES = '"防晒", "围巾"]'
QUOTED = '9"折%'  # an option holding a quote and a percent sign
PERCENT = "折%"   # a LIKE on the JSON text would find it inside QUOTED


async def _ready(library_stack: tuple[Stack, Path]) -> tuple[Stack, Path, dict[str, str]]:
    """A number field `spend` and two awkward options added; four customers with values:
    a (lina) 干性, 精华+口红, 2026-11-20, 1500; b (lina) 敏感, 口红+QUOTED, 2026-10-01, 99.5;
    c (zhou) 油性, 精华, 2026-11-25, 300; d (zhou) nothing."""
    stack, library = library_stack
    stack.runtime.services.sop.clock = lambda: NOW
    path = library / "profile_fields.toml"
    edit(path, CATEGORIES, f"\"防晒\", \"围巾\", '{QUOTED}', '{PERCENT}']")
    path.write_text(path.read_text(encoding="utf-8")
                    + '\n[[fields]]\nid = "spend"\nlabel = "年消费"\nkind = "number"\n',
                    encoding="utf-8")
    await reload(stack)
    who = {key: await _customer(stack, guide, name) for key, guide, name in (
        ("a", "lina", "陈思"), ("b", "lina", "王芳"), ("c", "zhou", "李娜"),
        ("d", "zhou", "赵敏"))}
    for key, values in (
            ("a", {"skin": "干性", "categories": ["精华", "口红"], "last_visit": "2026-11-20",
                   "spend": 1500}),
            ("b", {"skin": "敏感", "categories": ["口红", QUOTED], "last_visit": "2026-10-01",
                   "spend": "99.5"}),
            ("c", {"skin": "油性", "categories": ["精华"], "last_visit": "2026-11-25",
                   "spend": 300})):
        status, body = await stack.admin(f"/customers/{who[key]}/fields", method="PUT",
                                         json={"values": values})
        assert status == 200, body
    return stack, path, who


async def _found(stack: Stack, who: dict[str, str], *fields: dict[str, Any]) -> list[str]:
    """Who a segment of these field conditions finds (saved, paged, counted), by key."""
    status, made = await stack.admin("/segments", method="POST", json={
        "name": "资料分群", "conditions": {"fields": list(fields)}})
    assert status == 201, made
    found = await _members(stack, made["id"])
    assert made["count"] == len(found)
    names = {v: k for k, v in who.items()}
    return sorted(names[x] for x in found)


async def test_segments_by_profile_fields_find_exactly_their_customers(
        library_stack: tuple[Stack, Path]) -> None:
    stack, _, who = await _ready(library_stack)
    assert await _found(stack, who, {"field": "skin", "op": "in",
                                     "values": ["干性", "敏感"]}) == ["a", "b"]
    assert await _found(stack, who, {"field": "categories", "op": "has_any",
                                     "values": ["精华"]}) == ["a", "c"]
    assert await _found(stack, who, {"field": "categories", "op": "has_all",
                                     "values": ["精华", "口红"]}) == ["a"]
    assert await _found(stack, who, {"field": "categories", "op": "has_any",
                                     "values": [QUOTED]}) == ["b"]
    assert await _found(stack, who, {"field": "categories", "op": "has_any",
                                     "values": [PERCENT]}) == []
    assert await _found(stack, who, {"field": "last_visit", "op": "between",
                                     "from": "2026-11-01", "to": "2026-11-30"}) == ["a", "c"]
    assert await _found(stack, who, {"field": "last_visit", "op": "between",
                                     "from": "2026-11-21"}) == ["c"]
    assert await _found(stack, who, {"field": "last_visit", "op": "between",
                                     "to": "2026-11-20"}) == ["a", "b"]
    # as numbers: as text "1500" < "200" and "99.5" > "300"
    assert await _found(stack, who, {"field": "spend", "op": "between", "min": 200}) == ["a", "c"]
    assert await _found(stack, who, {"field": "spend", "op": "between",
                                     "max": "300"}) == ["b", "c"]
    assert await _found(stack, who, {"field": "spend", "op": "between", "min": 99.5,
                                     "max": 99.5}) == ["b"]
    assert await _found(stack, who, {"field": "skin", "op": "set"}) == ["a", "b", "c"]
    assert await _found(stack, who, {"field": "skin", "op": "unset"}) == ["d"]
    assert await _found(stack, who, {"field": "skin", "op": "in", "values": ["干性", "敏感"]},
                        {"field": "spend", "op": "between", "min": 100}) == ["a"]


async def test_a_drop_to_a_profile_segment_reaches_only_its_customers(
        library_stack: tuple[Stack, Path]) -> None:
    stack, _, who = await _ready(library_stack)
    status, made = await stack.admin("/segments", method="POST", json={
        "name": "精华老客", "conditions": {"fields": [
            {"field": "categories", "op": "has_any", "values": ["精华"]},
            {"field": "last_visit", "op": "between", "to": "2026-11-22"}]}})
    assert status == 201 and made["count"] == 1, made
    draft = {"title": "资料群发", "channel": "guide_task", "message": "drop_double12_warmup",
             "audience": {"segment": made["id"]}, "at": "now"}
    status, sent = await stack.admin("/drops", method="POST", json=draft)
    assert status == 201 and sent["tasks"] == 1, sent
    await stack.runtime.services.sop.tick("acme")
    assert _sends(stack) == [("lina", (who["a"],))]


async def test_bad_field_conditions_are_refused_coded(library_stack: tuple[Stack, Path]) -> None:
    stack, _, _ = await _ready(library_stack)
    for cond, code, field in (
            ({"field": "hair", "op": "set"}, "segment.unknown_field", "conditions.fields.0.field"),
            ({"field": "skin", "op": "in", "values": ["中性"]}, "segment.unknown_option",
             "conditions.fields.0.values"),
            ({"field": "skin", "op": "has_any", "values": ["干性"]}, "segment.field_op",
             "conditions.fields.0.op"),
            ({"field": "skin", "op": "in"}, "segment.field_values", "conditions.fields.0.values"),
            ({"field": "spend", "op": "between", "min": "lots"}, "segment.field_number",
             "conditions.fields.0.min"),
            ({"field": "spend", "op": "between", "from": "2026-01-01"}, "segment.field_extra",
             "conditions.fields.0.from"),
            ({"field": "spend", "op": "between"}, "segment.field_bounds", "conditions.fields.0"),
            ({"field": "last_visit", "op": "between", "from": "2026-12-01", "to": "2026-11-01"},
             "segment.date_order", "conditions.fields.0.from"),
            ({"field": "last_visit", "op": "set", "from": "2026-12-01"}, "segment.field_extra",
             "conditions.fields.0.from")):
        status, refused = await stack.admin("/segments", method="POST", json={
            "name": "坏条件", "conditions": {"fields": [cond]}})
        api = code if code.startswith("segment.unknown_") else "segment.invalid"
        assert status == 400 and refused.get("code") == api, (cond, refused)
        assert refused.get("detail", refused["code"]) == code, (cond, refused)
        assert refused["field"] == field, (cond, refused)
    status, segments = await stack.admin("/segments")
    assert status == 200 and segments["segments"] == []


async def test_export_carries_fields_and_a_removed_field_or_option_is_named(
        library_stack: tuple[Stack, Path]) -> None:
    stack, path, who = await _ready(library_stack)
    status, made = await stack.admin("/segments", method="POST", json={
        "name": "敏感高消费", "conditions": {"fields": [
            {"field": "skin", "op": "in", "values": ["敏感", "干性"]},
            {"field": "spend", "op": "between", "min": 50}]}})
    assert status == 201 and made["count"] == 2 and made["removed_fields"] == [], made
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, text, _ = await console.get(f"/console/acme/segments/{made['id']}?format=csv")
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert sorted((r["field:skin"], r["field:spend"]) for r in rows) == [
            ("干性", "1500"), ("敏感", "99.5")]

        status, body = await stack.admin(f"/customers/{who['c']}/fields", method="PUT",
                                         json={"values": {"size": "M"}})
        assert status == 200, body
        edit(path, '"混合", "敏感"]', '"混合"]')
        edit(path, 'id = "spend"', 'id = "yearly_spend"')
        edit(path, 'label = "尺码"\nkind = "choice"', 'label = "尺码"\nkind = "multi"')
        await reload(stack)
        # a choice's value kept when its field became a multi: the one option it reads as
        assert sorted(await _found(stack, who, {"field": "size", "op": "has_any",
                                                "values": ["M", "L"]})) == ["c"]
        status, seen = await stack.admin(f"/segments/{made['id']}")
        assert status == 200 and seen["count"] == 2, seen  # still by the values kept
        assert seen["removed_fields"] == [
            {"field": "skin", "label": "肤质", "option": "敏感"},
            {"field": "spend", "label": "", "option": ""}], seen
        status, page, _ = await console.get(f"/console/acme/segments/{made['id']}")
        assert status == 200 and 'id="removed-fields"' in page and "肤质「敏感」" in page
        status, refused = await stack.admin(f"/segments/{made['id']}", method="PUT", json={
            "name": "敏感高消费", "conditions": seen["conditions"]})
        assert status == 400 and refused["code"] == "segment.unknown_option", refused
        status, changed = await stack.admin(f"/segments/{made['id']}", method="PUT", json={
            "name": "干性", "conditions": {"fields": [
                {"field": "skin", "op": "in", "values": ["干性"]}]}})
        assert status == 200 and changed["removed_fields"] == [] and changed["count"] == 1
        assert sorted(await _members(stack, made["id"])) == [who["a"]]
    finally:
        await console.close()


async def test_the_console_form_previews_and_saves_field_conditions(
        library_stack: tuple[Stack, Path]) -> None:
    stack, _, _ = await _ready(library_stack)
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/segments/new")
        assert status == 200 and 'name="fop.skin"' in html and 'name="fmin.spend"' in html
        status, preview, _ = await console.get(
            "/console/acme/segments/new?preview=1&fval.skin=干性&fval.skin=敏感")
        assert status == 200 and "当前匹配 2 位客户" in preview, preview
        assert '<option value="in" selected>' in preview
        status, preview, _ = await console.get(
            "/console/acme/segments/new?preview=1&fop.skin=in&fval.skin=中性")
        assert status == 400 and "客户资料「肤质」没有选项「中性」" in preview, preview
        form = [("_csrf", csrf_in(html)), ("name", "高消费"), ("fmin.spend", "200"),
                ("fop.last_visit", "set")]
        status, _, resp = await console.post("/console/acme/segments", form)  # type: ignore[arg-type]
        assert status == 303, resp.headers
        status, page, _ = await console.get(resp.headers["Location"])
        assert status == 200 and 'data-count="2"' in page
        assert 'data-condition="field:spend"' in page and "年消费" in page
    finally:
        await console.close()
