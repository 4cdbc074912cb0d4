"""Every console CSV follows one policy (CSV_EXPORTS in guidebot/web/pages/console.py): one
that lists customers' personal data is refused to a read-only viewer (403, worded) and each
member's download is one 操作日志 entry; a CSV of figures or of HQ's own acts is for whoever
sees the page and is not recorded. A page that answers ?format=csv with a CSV and is not in
the list fails here."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest

from guidebot.web.pages.console import CSV_EXPORTS, catalog
from tests.support.audit import entries, start_team, wecom_sign_in
from tests.support.commerce import paid, post_settled
from tests.support.console import Console
from tests.support.stack import Stack

ZH = catalog("zh-CN")
BASE = "/console/{tenant}/"
CUSTOMER = "wmLISTED"
CUSTOMER_NAME = "名单里的人"
GONE = "wmGONE"  # a customer lina deleted: 员工删人记录 lists them
GONE_NAME = "删掉的人"
# what each personal CSV shows of the seeded customers
SHOWS = {"/console/{tenant}/deletions": (GONE, GONE_NAME)}


@pytest.fixture
async def team(aiohttp_server: Any, tmp_path: Any, db_url: str) -> Any:
    s = await start_team(aiohttp_server, tmp_path, db_url)
    yield s
    await s.http.close()


def test_every_personal_csv_has_its_audit_label_in_both_languages() -> None:
    """A recorded download is worded on the 操作日志 page (`audit.action.GET <route>`)."""
    for lang in ("zh-CN", "en"):
        words = catalog(lang)
        missing = [t for t, personal in CSV_EXPORTS.items()
                   if personal and f"audit.action.GET {t}" not in words]
        assert missing == [], lang


async def _ids(team: Stack) -> dict[str, str]:
    """A value for each path id of the console's GET routes: the seeded customer and segment,
    a SOP of the library; the rest name nothing (their pages answer 404, never a CSV)."""
    status, segment = await team.admin("/segments", method="POST",
                                       json={"name": "全部", "conditions": {}})
    assert status == 201, segment
    return {"tenant": "acme", "segment_id": str(segment["id"]), "external_userid": CUSTOMER,
            "sop_id": "repurchase_care", "code_id": "999999", "chat_id": "wrNONE",
            "order_no": "NO-SUCH", "drop_id": "no-such", "batch_id": "999999",
            "name": "none.png"}


async def _csv_routes(team: Stack, ids: dict[str, str]) -> set[str]:
    """The console's GET routes that answer ?format=csv with a CSV (signed in with the admin
    token, so nothing is refused), found by asking each of them."""
    console = Console(team)
    found = set()
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        templates = sorted({r.resource.canonical for r in team.app.router.routes()
                            if r.method == "GET" and r.resource is not None
                            and r.resource.canonical.startswith(BASE)})
        assert "/console/{tenant}/customers" in templates
        for template in templates:
            names = re.findall(r"{(\w+)}", template)
            unknown = [n for n in names if n not in ids]
            assert unknown == [], f"give _ids a value for {unknown} ({template})"
            _, _, resp = await console.get(template.format(**ids) + "?format=csv")
            if resp.content_type == "text/csv":
                found.add(template)
    finally:
        await console.close()
    return found


def cells(text: str) -> set[str]:
    return {c for row in csv.reader(io.StringIO(text.removeprefix("\ufeff"))) for c in row}


async def _link(console: Console, path: str) -> str:
    """The page's CSV link (the href carrying format=csv), as a path to ask for."""
    status, html, _ = await console.get(path)
    assert status == 200, path
    links = re.findall(r'href="(\?[^"]*format=csv[^"]*)"', html)
    assert len(links) == 1, (path, links)
    return path + unescape(links[0])


async def test_every_console_csv_is_classified_and_follows_its_class(team: Stack) -> None:
    for external_userid, name in ((CUSTOMER, CUSTOMER_NAME), (GONE, GONE_NAME)):
        await team.sandbox.simulate_add_contact("acme", userid="lina",
                                                external_userid=external_userid, name=name)
    await team.runtime.drain()
    await team.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_external_contact",
        "UserID": "lina", "ExternalUserID": GONE})
    await team.runtime.drain()
    status, _ = await post_settled(team, paid("CO-CSV1", customer=CUSTOMER))
    assert status == 200
    ids = await _ids(team)
    assert await _csv_routes(team, ids) == set(CSV_EXPORTS), (
        "a console CSV is missing from CSV_EXPORTS (or listed and gone): classify it")

    pages = {t: t.format(**ids) for t in CSV_EXPORTS}
    viewer = await wecom_sign_in(team, "wangfang")
    try:
        for template, path in pages.items():
            status, html, resp = await viewer.get(await _link(viewer, path))
            if CSV_EXPORTS[template]:
                assert status == 403 and resp.content_type == "text/html", template
                assert ZH["err.viewer_export"] in html and CUSTOMER not in html, template
            else:
                assert status == 200 and resp.content_type == "text/csv", template
                assert html.startswith("\ufeff"), template
    finally:
        await viewer.close()
    assert [e["action"] for e in await entries(team) if e["actor"] == "wangfang"] == [
        "sign_in"]

    lina = await wecom_sign_in(team, "lina")
    try:
        for template, path in pages.items():
            status, text, resp = await lina.get(await _link(lina, path))
            assert status == 200 and resp.content_type == "text/csv", template
            assert text.startswith("\ufeff"), template
            if CSV_EXPORTS[template]:  # it does list the customers
                assert set(SHOWS.get(template, (CUSTOMER, CUSTOMER_NAME))) <= cells(text), (
                    template)
            else:  # figures only: no customer's id or name
                assert not {CUSTOMER, CUSTOMER_NAME, GONE, GONE_NAME} & cells(text), template
        status, html, _ = await lina.get("/console/acme/audit?actor=lina")
        assert status == 200
        for template in (t for t, personal in CSV_EXPORTS.items() if personal):
            assert ZH[f"audit.action.GET {template}"] in html, template
    finally:
        await lina.close()
    recorded = [(e["action"], e["status"]) for e in reversed(await entries(team))
                if e["actor"] == "lina" and e["action"] != "sign_in"]
    assert recorded == [(f"GET {t}", 200) for t, personal in CSV_EXPORTS.items() if personal]
