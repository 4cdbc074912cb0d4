"""操作日志 over HTTP: writes through the admin API and a console form are recorded with their
actor, route, ids and status (failed requests and reads are not, bodies never are); the
console page and its CSV, the API's filters and cursor, and other tenants kept out."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, quote

from guidebot.web.audit_trail import audited
from guidebot.web.pages.console import CSV_EXPORTS, LANGS
from tests.support.audit import entries, name_in_directory, raw_rows, router_routes
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack

SOP = "repurchase_care"
MARKER = "MARKER-审计-7f3a"
API = "/api/v1/{tenant}"


CATALOGS = Path(__file__).parents[2] / "guidebot" / "templates" / "console" / "i18n"
# the reads recorded as accesses besides the personal CSVs: 查阅复制 through the admin API
ACCESSES = ("GET /api/v1/{tenant}/customers/{external_userid}/personal-data",)


def test_every_recorded_route_has_a_label_in_both_languages(tmp_path: Path) -> None:
    routes = set(router_routes(tmp_path))
    recorded = {r for r in routes if audited(*r.split(" ", 1))}
    assert len(recorded) > 80  # the router was read
    reads = {f"GET {path}" for path, personal in CSV_EXPORTS.items() if personal}
    reads |= set(ACCESSES)
    assert reads <= routes, reads - routes
    for lang in LANGS:
        words = json.loads((CATALOGS / f"{lang}.json").read_text(encoding="utf-8"))
        unlabelled = sorted(r for r in recorded | reads
                            if not words.get(f"audit.action.{r}", "").strip())
        assert unlabelled == [], (lang, unlabelled)  # word each in both catalogs


async def _writes(stack: Stack) -> str:
    """Three API writes, a refused one and a read; then a console form. The customer enrolled."""
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="审计客户")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    status, body = await stack.admin("/tags", method="POST", json={
        "group_name": "审计组", "tags": [{"name": MARKER}]})
    assert status == 201, body
    status, body = await stack.admin(f"/sops/{SOP}/enroll", method="POST",
                                     json={"external_userid": customer, "guide": "lina"})
    assert status == 201, body
    status, body = await stack.admin(f"/sops/{SOP}/switch", method="POST",
                                     json={"enabled": False, "operator": MARKER})
    assert status == 200, body
    status, body = await stack.admin(f"/sops/{SOP}/switch", method="POST",
                                     json={"enabled": "not a bool", "operator": MARKER})
    assert status == 400, body  # refused: not recorded
    assert (await stack.admin("/sops"))[0] == 200  # a read: not recorded
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/sops/{SOP}")
        assert status == 200
        status, _, _ = await console.post(f"/console/acme/sops/{SOP}/switch",
                                          {"enabled": "1", "_csrf": csrf_in(html)})
        assert status == 303
    finally:
        await console.close()
    return customer


async def test_writes_are_recorded_with_actor_route_ids_and_status_never_bodies(
        stack: Stack) -> None:
    await _writes(stack)
    items = await entries(stack)
    listed = [(e["actor"], e["action"], e["params"], e["status"]) for e in reversed(items)]
    assert listed == [
        ("admin token", f"POST {API}/tags", {}, 201),
        ("admin token", f"POST {API}/sops/{{sop_id}}/enroll", {"sop_id": SOP}, 201),
        ("admin token", f"POST {API}/sops/{{sop_id}}/switch", {"sop_id": SOP}, 200),
        ("admin token", "sign_in", {"method": "token"}, 303),
        ("admin token", "POST /console/{tenant}/sops/{sop_id}/switch", {"sop_id": SOP}, 303),
    ]
    assert all(e["status"] < 400 for e in items)
    assert not any(e["action"].startswith("GET ") for e in items)
    rows = await raw_rows(stack)
    assert len(rows) == 5 and {r["tenant"] for r in rows} == {"acme"}
    stored = repr(rows)
    assert MARKER not in stored and "审计组" not in stored and "审计客户" not in stored
    assert "acme-admin-token" not in stored and "enabled" not in stored


async def test_the_console_page_lists_newest_first_filters_by_actor_and_exports_csv(
        stack: Stack) -> None:
    await _writes(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/audit")
        assert status == 200 and 'id="audit"' in html
        assert 'href="/console/acme/audit" aria-current="page"' in html
        assert html.count("<tr data-actor=") == 6  # the five above and this sign-in
        first = html.index('data-action="sign_in"')
        assert first < html.index(f'data-action="POST {API}/tags"')  # newest first
        assert "新建标签" in html and "把客户加入 SOP" in html and "sop_id=" + SOP in html
        assert MARKER not in html and "管理员令牌" in html
        status, html, _ = await console.get("/console/acme/audit?actor=lina")
        assert status == 200 and "<tr data-actor=" not in html
        status, body, resp = await console.get("/console/acme/audit?format=csv")
        assert status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
        assert [r["action"] for r in table][-1] == f"POST {API}/tags"
        assert {r["actor"] for r in table} == {"admin token"} and len(table) == 6
        assert all(r["at"].endswith("+08:00") for r in table)  # the tenant's zone
        status, html, _ = await console.get("/console/acme/audit?after=nonsense")
        assert status == 400 and "翻页参数无效" in html
    finally:
        await console.close()


async def test_the_api_pages_with_a_cursor_and_filters_by_actor_and_range(
        stack: Stack) -> None:
    audit = stack.runtime.services.audit
    for n in range(103):
        await audit.record("acme", "lina" if n % 2 else "wangfang", "POST /x", {"n": str(n)},
                           200)
    status, body = await stack.admin("/audit")
    assert status == 200 and len(body["items"]) == 100 and body["next_cursor"]
    status, rest = await stack.admin(f"/audit?cursor={body['next_cursor']}")
    assert status == 200 and rest["next_cursor"] is None
    seen = [e["params"]["n"] for e in body["items"] + rest["items"]]
    assert seen == [str(n) for n in reversed(range(103))]
    status, body = await stack.admin("/audit?actor=lina")
    assert {e["actor"] for e in body["items"]} == {"lina"} and len(body["items"]) == 51
    status, body = await stack.admin("/audit?from=2020-01-01&to=2020-01-31")
    assert status == 200 and body["items"] == []
    status, body = await stack.admin("/audit?cursor=nonsense")
    assert status == 400 and body.get("code") == "list.bad_cursor"


async def test_another_tenant_cannot_read_the_audit_log(stack: Stack) -> None:
    await _writes(stack)
    beta = Console(stack)
    try:
        assert (await beta.login("beta", "beta-admin-token")).status == 303
        status, html, _ = await beta.get("/console/acme/audit")
        assert status == 403 and "sop_id" not in html
        status, html, _ = await beta.get("/console/acme/audit?format=csv")
        assert status == 403 and "sop_id" not in html
        status, body = await stack.admin("/audit", tenant="acme", token="beta-admin-token")
        assert status == 403 and "items" not in body
        beta_items = await entries(stack, tenant="beta")
        assert [e["action"] for e in beta_items] == ["sign_in"]  # only its own
    finally:
        await beta.close()


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-actor="([^"]*)"', html)


def _presets(html: str) -> list[dict[str, list[str]]]:
    block = html[html.index('class="tabs presets"'):]
    block = block[:block.index("</ul>")]
    return [parse_qs(unescape(q)) for q in re.findall(r'href="\?([^"]*)"', block)]


async def test_the_page_words_sign_ins_in_the_language_and_labels_every_route(
        stack: Stack) -> None:
    await _writes(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/audit?lang=en")
        assert status == 200 and len(_rows(html)) == 6
        assert "Signed in (admin token)" in html and "（" not in html
        assert "Created tags" in html and "Switched an SOP" in html
        status, html, _ = await console.get("/console/acme/audit?lang=zh-CN")
        assert status == 200 and "登录控制台（管理员令牌）" in html
        # no action shown as its bare route: each row's cell differs from its template
        cells = re.findall(r'<td title="([^"]*)">([^<]*)</td>', html)
        assert len(cells) == 6 and all(unescape(t) != unescape(w) for t, w in cells)
    finally:
        await console.close()


async def test_the_actor_filter_takes_the_words_the_table_shows_and_presets_keep_it(
        stack: Stack) -> None:
    await _writes(stack)
    await name_in_directory(stack, (("lina", "李娜"),))  # lina's name, read now
    await stack.runtime.services.audit.record("acme", "lina", f"POST {API}/tags", {}, 201)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/audit")
        assert status == 200 and len(_rows(html)) == 7  # the six of the token's, lina's
        for typed in ("管理员令牌", "Admin token", "admin token", "ADMIN TOKEN"):
            status, html, _ = await console.get(f"/console/acme/audit?actor={quote(typed)}")
            assert status == 200 and set(_rows(html)) == {"admin token"}, typed
            assert len(_rows(html)) == 6, typed
            presets = _presets(html)
            assert len(presets) == 5
            assert all(p["actor"] == [typed] and p["from"] and p["to"] for p in presets)
        for typed in ("李娜", "lina"):
            status, html, _ = await console.get(f"/console/acme/audit?actor={quote(typed)}")
            assert status == 200 and _rows(html) == ["lina"], typed
        status, body, _ = await console.get(
            f"/console/acme/audit?format=csv&actor={quote('管理员令牌')}")
        table = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
        assert {r["actor"] for r in table} == {"admin token"} and len(table) == 6
        status, html, _ = await console.get("/console/acme/audit?actor=nobody")
        assert status == 200 and _rows(html) == []
        assert all("actor" not in p or p["actor"] == ["nobody"] for p in _presets(html))
        status, html, _ = await console.get("/console/acme/audit")
        assert all("actor" not in p for p in _presets(html))
    finally:
        await console.close()
