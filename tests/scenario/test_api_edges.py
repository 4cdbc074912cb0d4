"""The admin API's edges: field-named 400s, idempotency conflicts, referential checks, CSV
formulas, link defaults, unescaped Chinese and the public task page's ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from guidebot.commerce import periods, statements
from guidebot.db.models import ChannelCode, Guide, Store
from guidebot.db.models_commerce import LedgerEntry, TrackedLink
from guidebot.db.models_sop import SopEnrollment
from tests.support.stack import Stack, known

POSTS = ("/channels", "/links", "/commissions/adjustments", "/sops/repurchase_care/enroll",
         "/customers/wmEDGE0001/tags")


async def _raw(stack: Stack, method: str, path: str, data: bytes | None = None,
               tenant: str = "acme") -> tuple[int, Any, str]:
    headers = {"Authorization": f"Bearer {stack.tenant(tenant).admin_token}",
               "Content-Type": "application/json"}
    async with stack.http.request(method, f"{stack.bot_url}/api/v1/{tenant}{path}",
                                  headers=headers, data=data) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers["Content-Type"]


async def _rows(stack: Stack, table: Any) -> int:
    async with stack.runtime.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def _all_rows(stack: Stack) -> dict[str, int]:
    tables = (ChannelCode, Guide, Store, LedgerEntry, TrackedLink, SopEnrollment)
    return {t.__name__: await _rows(stack, t) for t in tables}


def _sent(stack: Stack) -> list[str]:
    """Calls that act on a customer or guide (the start's tag-library and address-book syncs
    are not)."""
    return [c["path"] for c in stack.calls() if not c["path"].endswith(
        ("gettoken", "get_corp_tag_list", "add_corp_tag", "department/simplelist",
         "department/get", "user/list_id", "user/simplelist", "user/get"))]


async def test_malformed_bodies_are_field_named_400s_and_store_nothing(stack: Stack) -> None:
    await known(stack, customers=("wmEDGE0001",), guides=("lina",))
    before = await _all_rows(stack)
    deep = b"[" * 5000 + b"]" * 5000
    for path in POSTS:
        for raw in (b"\xff\xfe{\"guide\": \"lina\"}", b'{"guide": "\xe9"}', deep, b"[]", b""):
            status, body, _ = await _raw(stack, "POST", path, raw)
            assert status == 400 and body["field"] == "body", (path, raw[:20], body)
    cases = [
        ("/channels", {"guide": "lina", "store": {"id": "S01"}}, "store"),
        ("/channels", {"guide": "x" * 10_000}, "guide"),
        ("/channels", {"guide": "li na"}, "guide"),
        ("/channels", {"guide": "lina", "tags": "新客"}, "tags"),
        ("/channels", {"guide": "lina", "campaign": "a\nb"}, "campaign"),
        ("/channels", {"guide": "lina", "surprise": 1}, "surprise"),
        ("/links", {"guide": "lina", "customer": "wm客户"}, "customer"),
        ("/commissions/adjustments", {"guide": "lina", "amount_fen": 10**13, "reason": "r",
                                      "operator": "o"}, "amount_fen"),
        ("/commissions/adjustments", {"guide": "lina", "amount_fen": "500", "reason": "r",
                                      "operator": "o"}, "amount_fen"),
        ("/commissions/adjustments", {"guide": "lina", "amount_fen": 1.5, "reason": "r",
                                      "operator": "o"}, "amount_fen"),
        ("/sops/repurchase_care/enroll", {"external_userid": "wm EDGE", "guide": "lina"},
         "external_userid"),
        ("/sops/repurchase_care/enroll", {"audience": {"tags_any": [1]}}, "audience.tags_any.0"),
        ("/customers/wmEDGE0001/tags", {"guide": "lina", "add": [""]}, "add.0"),
    ]
    for path, payload, field in cases:
        status, body = await stack.admin(path, method="POST", json=payload)
        assert status == 400 and body["field"] == field, (path, payload, body)
        assert body["error"].startswith(f"{field}: ") and body["reason"]
    assert await _all_rows(stack) == before
    assert _sent(stack) == []


async def test_periods_and_dates_out_of_range_are_400(stack: Stack) -> None:
    for query in ("period=0000-01", "period=2026-11%0A", "period=2026-13", "period=２０２６-11",
                  "period=2026-11&period=x", ""):
        for path in ("/commissions/statements", "/commissions/stores", "/commerce/value"):
            status, body = await stack.admin(f"{path}?{query}")
            if query.startswith("period=2026-11&"):
                assert status == 200, body  # a repeated parameter counts once: its first
                continue
            assert status == 400 and body["field"] == "period", (path, query, body)
    status, body = await stack.admin("/commissions/settle?period=2026-11%0A", method="POST")
    assert status == 400 and body["field"] == "period"
    for added_at in ("9999-12-31T23:59:59+08:00", "0001-01-01T00:00:00", "tomorrow", "1" * 40):
        status, body = await stack.admin(f"/sops/repurchase_care/preview?added_at={added_at}")
        assert status == 400 and body["field"] == "added_at", (added_at, body)
    status, body = await stack.admin("/tasks?status=whatever")
    assert status == 400 and body["field"] == "status"
    status, body = await stack.admin("/customers/" + "w" * 65)
    assert status == 400 and body["field"] == "external_userid"


async def test_adjustment_key_reused_with_another_body_is_409(stack: Stack) -> None:
    await known(stack, guides=("lina",))
    first = {"guide": "lina", "amount_fen": 100, "reason": "sample", "operator": "hq",
             "key": "ADJ-9"}
    status, created = await stack.admin("/commissions/adjustments", method="POST", json=first)
    assert status == 201 and created["amount_fen"] == 100
    status, again = await stack.admin("/commissions/adjustments", method="POST", json=first)
    assert status == 200 and again == created
    status, body = await stack.admin("/commissions/adjustments", method="POST",
                                     json={**first, "amount_fen": 999_999})
    assert status == 409 and body["field"] == "key" and body["stored"]["amount_fen"] == 100
    period = periods.of(datetime.now(UTC), stack.tenant().tz)
    _, statement = await stack.admin(f"/commissions/statements?period={period}")
    assert [r["adjustment_fen"] for r in statement["statements"]] == [100]


async def test_channel_and_link_keys_replay_or_conflict(stack: Stack) -> None:
    body = {"guide": "lina", "campaign": "c1", "key": "CH-1"}
    status, created = await stack.admin("/channels", method="POST", json=body)
    assert status == 201, created
    status, again = await stack.admin("/channels", method="POST", json=body)
    assert status == 200 and again == created
    status, conflict = await stack.admin("/channels", method="POST",
                                         json={**body, "campaign": "c2"})
    assert status == 409 and conflict["stored"]["id"] == created["id"]
    assert len(stack.calls("externalcontact/add_contact_way")) == 1
    assert await _rows(stack, ChannelCode) == 1

    link = {"guide": "lina", "title": "卡片", "key": "LINK-1"}
    status, made = await stack.admin("/links", method="POST", json=link)
    assert status == 201
    status, replay = await stack.admin("/links", method="POST", json=link)
    assert status == 200 and replay == made
    status, conflict = await stack.admin("/links", method="POST", json={**link, "title": "x"})
    assert status == 409 and conflict["stored"]["token"] == made["token"]
    assert await _rows(stack, TrackedLink) == 1


async def test_unknown_customers_and_guides_are_404_and_nothing_happens(stack: Stack) -> None:
    await known(stack, customers=("wmEDGE0001",), guides=("lina",))
    await known(stack, customers=("wmBETA0001",), guides=("betaguide",), tenant="beta")
    before = await _all_rows(stack)
    cases = [
        ("/sops/repurchase_care/enroll", {"external_userid": "wmNOBODY", "guide": "lina"},
         "external_userid"),
        ("/sops/repurchase_care/enroll", {"external_userid": "wmBETA0001", "guide": "lina"},
         "external_userid"),  # another tenant's customer
        ("/sops/repurchase_care/enroll", {"external_userid": "wmEDGE0001", "guide": "nobody"},
         "guide"),
        ("/commissions/adjustments", {"guide": "betaguide", "amount_fen": 5, "reason": "r",
                                      "operator": "o"}, "guide"),
        ("/customers/wmNOBODY/tags", {"guide": "lina", "add": ["新客"]}, "external_userid"),
        ("/customers/wmEDGE0001/tags", {"guide": "nobody", "add": ["新客"]}, "guide"),
    ]
    for path, payload, field in cases:
        status, body = await stack.admin(path, method="POST", json=payload)
        assert status == 404 and body["field"] == field, (path, payload, body)
    stack.runtime.services.sop.clock = lambda: datetime.now(UTC)
    await stack.runtime.services.sop.tick("acme")
    assert await _all_rows(stack) == before
    assert _sent(stack) == []
    period = periods.of(datetime.now(UTC), stack.tenant().tz)
    _, statement = await stack.admin(f"/commissions/statements?period={period}")
    assert statement["statements"] == []


async def _refuse_next_contact_way(stack: Stack) -> None:
    """WeCom answers 40003 (unknown userid) to the next add_contact_way."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/add_contact_way", "errcode": 40003,
            "times": 1}) as resp:
        assert resp.status == 200


async def test_a_refused_channel_create_leaves_no_rows(stack: Stack) -> None:
    await _refuse_next_contact_way(stack)
    status, body = await stack.admin("/channels", method="POST",
                                     json={"guide": "ghost", "store": "S99"})
    assert status == 422 and body["field"] == "guide", body
    assert await _rows(stack, ChannelCode) == 0
    assert await _rows(stack, Guide) == 0 and await _rows(stack, Store) == 0
    _, guides = await stack.admin("/guides")
    assert guides == {"guides": []}
    # A guide this tenant knows keeps its store when WeCom refuses a code for another one.
    await known(stack, guides=("lina",))
    await _refuse_next_contact_way(stack)
    status, _ = await stack.admin("/channels", method="POST",
                                  json={"guide": "lina", "store": "S98"})
    assert status == 422
    _, guides = await stack.admin("/guides")
    assert [(g["userid"], g["store"]) for g in guides["guides"]] == [("lina", None)]
    assert await _rows(stack, Store) == 0


async def test_statement_csv_escapes_formulas(stack: Stack) -> None:
    await known(stack, guides=("@sum", "-cmd", "lina"))
    for guide in ("@sum", "-cmd", "lina"):
        status, _ = await stack.admin("/commissions/adjustments", method="POST", json={
            "guide": guide, "amount_fen": -5, "reason": "r", "operator": "o"})
        assert status == 201
    period = periods.of(datetime.now(UTC), stack.tenant().tz)
    headers = {"Authorization": f"Bearer {stack.tenant().admin_token}"}
    async with stack.http.get(f"{stack.bot_url}/api/v1/acme/commissions/statements",
                              params={"period": period, "format": "csv"},
                              headers=headers) as resp:
        text = await resp.text()
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert sorted(r[1] for r in rows) == ["'-cmd", "'@sum", "lina"]
    assert {r[4] for r in rows} == {"-5"}  # numbers stay numbers


def test_csv_cells_a_spreadsheet_would_run_are_prefixed() -> None:
    body = {"period": "2026-11", "statements": [
        {"guide": g, "earned_fen": 0, "clawback_fen": 0, "adjustment_fen": -1, "net_fen": -1,
         "orders": 0} for g in ('=HYPERLINK("http://x","y")', "+1", "\tx", "\rx", "ok")]}
    lines = statements.to_csv(body).splitlines()
    assert lines[1].startswith("2026-11,\"'=HYPERLINK(")
    assert [line.split(",")[1] for line in lines[2:4]] == ["'+1", "'\tx"]
    assert lines[-1] == "2026-11,ok,0,0,-1,-1,0"


async def test_links_need_only_a_guide(stack: Stack) -> None:
    catalog = stack.runtime.services.commerce.catalog
    status, link = await stack.admin("/links", method="POST", json={"guide": "lina"})
    assert status == 201, link
    assert link["card"]["miniprogram"]["title"] == catalog.default_card_title
    assert link["page"].startswith(catalog.default_page + "?t=")
    status, link = await stack.admin("/links", method="POST",
                                     json={"guide": "lina", "sku": "NOT-IN-CATALOG"})
    assert status == 201 and link["card"]["miniprogram"]["title"] == catalog.default_card_title


async def test_json_answers_carry_chinese_unescaped(stack: Stack) -> None:
    status, body, content_type = await _raw(stack, "POST", "/links",
                                            '{"guide": "lina", "title": "口红"}'.encode())
    assert status == 201 and content_type == "application/json; charset=utf-8"
    headers = {"Authorization": f"Bearer {stack.tenant().admin_token}"}
    async with stack.http.post(f"{stack.bot_url}/api/v1/acme/links", headers=headers,
                               json={"guide": "lina", "title": "口红"}) as resp:
        raw = await resp.read()
    assert "口红".encode() in raw and b"\\u" not in raw


async def test_task_page_with_a_non_ascii_id_is_404(stack: Stack) -> None:
    for task_id in ("²", "٣", "1²", "九", "9" * 40):
        async with stack.http.get(f"{stack.bot_url}/g/acme/tasks/{task_id}",
                                  params={"sig": "x"}) as resp:
            assert resp.status == 404, task_id


async def test_openapi_is_generated_from_the_models(stack: Stack) -> None:
    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        doc = await resp.json()
    schemas = doc["components"]["schemas"]
    assert schemas["LinkCreate"]["required"] == ["guide"]
    assert "key" in schemas["ChannelCreate"]["properties"]
    assert "key" in schemas["LinkCreate"]["properties"]
    adjustment = doc["paths"]["/api/v1/{tenant}/commissions/adjustments"]["post"]
    assert {"200", "201", "400", "404", "409"} <= set(adjustment["responses"])
    fen = schemas["AdjustmentCreate"]["properties"]["amount_fen"]
    assert fen["maximum"] == 10**12 and fen["minimum"] == -(10**12)


def test_catalog_default_card_title_is_validated(tmp_path: Path) -> None:
    from guidebot.content.catalog import load_catalog
    from guidebot.errors import ConfigError

    (tmp_path / "catalog.toml").write_text('default_card_title = "好物"\n', encoding="utf-8")
    assert load_catalog(tmp_path).default_card_title == "好物"
    for bad in ('""', '"' + "长" * 30 + '"', "3"):
        (tmp_path / "catalog.toml").write_text(f"default_card_title = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="default_card_title"):
            load_catalog(tmp_path)


async def test_a_query_parameter_without_a_name_is_named_in_the_refusal(stack: Stack) -> None:
    for path in ("/groups?=x", "/customers?=x", "/transfers?=1"):
        status, body = await stack.admin(path)
        assert status == 400 and body["field"] == '""', (path, body)
        assert "Extra inputs" in body["reason"]
