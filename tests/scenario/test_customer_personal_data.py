"""查阅复制 over the real stack: a customer built through real flows (tests/support/
customer_build.py) and a group they joined and left is exported by the admin API, every
section holding what was built; the export is recorded in 操作日志 with its actor, is refused
to another tenant, and answers 404 once the customer is erased. The console's download
(headers, file name) and the CLI too. And the export's sections are checked against the
erasure's inventory, so the two cannot drift apart."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from guidebot.cli import main
from guidebot.db.models_audit import AuditEntry
from guidebot.db.repo import erasure, personal_data
from tests.support.audit import name_in_directory
from tests.support.console import Console, csrf_in
from tests.support.customer_build import (
    FIELD,
    KF_TEXT,
    NAME,
    NOTE,
    UNIONID,
    build,
    guide_deletes,
)
from tests.support.stack import Stack

ACTION = "GET /api/v1/{tenant}/customers/{external_userid}/personal-data"
CONSOLE_ACTION = "POST /console/{tenant}/customers/{external_userid}/personal-data"


def test_every_table_the_erasure_deletes_or_blanks_has_a_section() -> None:
    """A personal table added to the erasure and not to the export (or the reverse) fails."""
    exported = {t for tables in personal_data.SECTIONS.values() for t in tables}
    personal = erasure.personal_tables()
    assert personal <= exported | set(personal_data.NOT_EXPORTED), sorted(
        personal - exported - set(personal_data.NOT_EXPORTED))
    assert set(personal_data.NOT_EXPORTED) <= personal
    # and each table the export reads is one the erasure's inventory names
    inventory = (personal | {m.__table__.name for m, _ in erasure.PSEUDONYMISED}
                 | set(erasure.NOT_ABOUT_CUSTOMERS))
    assert exported <= inventory, sorted(exported - inventory)


def _sections(document: dict[str, Any]) -> dict[str, Any]:
    return {s["key"]: s["data"] for s in document["sections"]}


async def _audit(stack: Stack) -> list[tuple[str, str, dict[str, str]]]:
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(AuditEntry).where(AuditEntry.tenant == "acme")
                                .order_by(AuditEntry.id))).scalars()
        return [(r.actor, r.action, json.loads(r.params)) for r in rows]


async def _guide_name(stack: Stack, userid: str) -> str:
    status, body = await stack.admin("/guides")
    assert status == 200, body
    return str(next(g["name"] for g in body["guides"] if g["userid"] == userid))


async def _in_and_out_of_a_group(stack: Stack, customer: str) -> None:
    created = await stack.sandbox.create_group("acme", "lina", name="导出测试群",
                                               members=[customer])
    await stack.runtime.drain()
    await stack.sandbox.quit_group("acme", str(created["chat_id"]), [customer])
    await stack.runtime.drain()


async def test_the_export_holds_every_section_as_built(stack: Stack) -> None:
    await name_in_directory(stack, (("lina", "李娜"),))  # lina's name, read now
    customer = await build(stack)
    await _in_and_out_of_a_group(stack, customer)
    before = len(await _audit(stack))
    status, document = await stack.admin(f"/customers/{customer}/personal-data")
    assert status == 200, document
    assert document["external_userid"] == customer and document["tenant"] == "acme"
    assert [s["key"] for s in document["sections"]] == list(personal_data.SECTIONS)
    titles = {s["key"]: s["title"] for s in document["sections"]}
    assert titles["notes"] == "跟进记录" and titles["fields"] == "客户资料"
    data = _sections(document)

    profile = data["profile"]
    assert (profile["name"], profile["unionid"]) == (NAME, UNIONID)
    (relation,) = data["relations"]
    assert (relation["guide"], relation["status"], relation["ended_at"]) == (
        "lina", "active", None)
    assert relation["guide_name"] == await _guide_name(stack, "lina") == "李娜"
    assert relation["added_at"]
    assert [b["guide"] for b in data["bindings"]] == ["lina"]
    tags = {t["tag"] for t in data["tags"]}
    assert {"门店扫码", "护肤兴趣"} <= tags, tags
    (field,) = data["fields"]
    assert (field["field"], field["label"], field["value"], field["set_by"]) == (
        "member_card", "会员卡号", FIELD, "hq")
    assert data["birthday"] == {"month": 3, "day": 14, "year": None}
    (note,) = data["notes"]
    assert (note["text"], note["writer"]) == (NOTE, "lina")
    assert note["day"] == note["at"][:10]  # the tenant's day of the note
    assert data["opt_out"] is None
    kf = data["kf_messages"]
    assert KF_TEXT in [m["text"] for m in kf["messages"] if m["from"] == "customer"]
    assert kf["total"] == len(kf["messages"]) and kf["left_out"] == 0
    (group,) = data["groups"]
    assert group["name"] == "导出测试群" and group["joined_at"] and group["left_at"]
    (order,) = data["orders"]
    assert (order["order_no"], order["amount_fen"], order["amount_yuan"], order["guide"]) == (
        "ERASE-O1", 19900, "199.00", "lina")
    assert [(i["sku"], i["quantity"]) for i in order["items"]] == [("SKU1", 1)]
    assert [(v["kind"], v["sku"]) for v in data["card_visits"]] == [("visit", "SKU2")]
    assert [(p["tag"], p["unionid"]) for p in data["pretags"]] == [("护肤兴趣", UNIONID)]

    # the access is in 操作日志, with who, and no other entry came of it
    assert (await _audit(stack))[before:] == [
        ("admin token", ACTION, {"external_userid": customer})]
    # the OpenAPI document covers it
    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert "get" in paths["/api/v1/{tenant}/customers/{external_userid}/personal-data"]


async def test_other_tenants_cannot_export_and_an_erased_customer_is_gone(stack: Stack) -> None:
    customer = await build(stack)
    status, body = await stack.admin(f"/customers/{customer}/personal-data", tenant="beta")
    assert status == 404, body
    status, _ = await stack.admin(f"/customers/{customer}/personal-data",
                                  token=stack.tenant("beta").admin_token)
    assert status in (401, 403)
    assert [a for a in await _audit(stack) if a[1] == ACTION] == []

    await guide_deletes(stack, customer)
    status, data = await stack.admin(f"/customers/{customer}/personal-data")
    assert status == 200
    (relation,) = _sections(data)["relations"]
    assert relation["status"] != "active" and relation["ended_at"]
    assert (await stack.admin(f"/customers/{customer}/erase", method="POST"))[0] == 200
    status, body = await stack.admin(f"/customers/{customer}/personal-data")
    assert status == 404 and body["code"] == "customer.unknown", body


async def test_the_console_download_and_the_cli(stack: Stack, tmp_path: Any) -> None:
    customer = await build(stack)
    console = Console(stack)
    page = f"/console/acme/customers/{customer}"
    try:
        await console.login("acme", "acme-admin-token")
        _, html, _ = await console.get(page)
        assert 'id="export-personal-data"' in html and "导出个人信息" in html
        assert f'action="{page}/personal-data"' in html
        status, _, _ = await console.get(f"{page}/personal-data")
        assert status == 405  # a form's POST only: no link from another site downloads it
        status, _, _ = await console.post(f"{page}/personal-data", {})
        assert status == 403  # no CSRF token
        status, text, resp = await console.post(f"{page}/personal-data",
                                                {"_csrf": csrf_in(html)})
        assert status == 200
        day = datetime.now(stack.tenant().tz).strftime("%Y%m%d")
        assert resp.headers["Content-Disposition"] == (
            f'attachment; filename="personal-data-acme-{day}.json"')
        assert customer not in resp.headers["Content-Disposition"]
        assert resp.headers["Content-Type"].startswith("application/json")
        downloaded = json.loads(text)
        assert _sections(downloaded)["profile"]["name"] == NAME
        assert [n["text"] for n in _sections(downloaded)["notes"]] == [NOTE]
        status, _, _ = await console.post("/console/acme/customers/wmNOSUCH/personal-data",
                                          {"_csrf": csrf_in(html)})
        assert status == 404
        _, html, _ = await console.get("/console/acme/audit")
        assert "导出客户个人信息" in html  # the access, worded on the 操作日志 page
    finally:
        await console.close()
    entries = [a for a in await _audit(stack) if a[1] == CONSOLE_ACTION]
    assert entries == [("admin token", CONSOLE_ACTION, {"external_userid": customer})]

    config = str(tmp_path / "config.toml")
    out = tmp_path / "export.json"
    code = await asyncio.to_thread(main, ["--config", config, "customer", "export",
                                          "--tenant", "acme", customer, "--out", str(out)])
    assert code == 0
    assert out.stat().st_mode & 0o777 == 0o600  # personal data: the owner's only
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert [o["amount_fen"] for o in _sections(exported)["orders"]] == [19900]
    assert _sections(exported)["fields"][0]["value"] == FIELD
    assert ("cli", "customer export", {"external_userid": customer}) in await _audit(stack)
    code = await asyncio.to_thread(main, ["--config", config, "customer", "export",
                                          "--tenant", "acme", "wmNOSUCH"])
    assert code == 2
