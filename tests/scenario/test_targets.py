"""Monthly targets (业绩目标) over HTTP: a month's guide and store targets set by the admin
API (bad input refused naming the field), read back with the month's figures and completion,
shown on the console's guides and stores pages for a one-month range, and set by its form."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from guidebot.db.models import Binding, Customer, Follow, FollowEvent, Guide, Store
from tests.support.commerce import paid, post_settled
from tests.support.console import Console, csrf_in, upkeep
from tests.support.stack import Stack

NOV = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 on Nov 3 in the tenant's zone
PERIOD = "2026-11"
NOVEMBER = "from=2026-11-01&to=2026-11-30"


async def month_of_sales(stack: Stack) -> None:
    """Guides lina (store S01) and wangfang (S02). In November 2026 three customers add lina
    and one of them pays ¥300.00 and ¥150.50 at S01, credited to lina as her exclusive guide;
    a fourth customer adds wangfang on December 1 (not November's)."""
    db = stack.runtime.services.db
    adds = [("wmT1", "lina", NOV), ("wmT2", "lina", NOV + timedelta(days=5)),
            ("wmT3", "lina", NOV + timedelta(days=20)),
            ("wmT4", "wangfang", datetime(2026, 12, 1, 2, 0, tzinfo=UTC))]
    async with db.write() as s:
        s.add_all([Store(tenant="acme", store_id="S01", name="静安店"),
                   Store(tenant="acme", store_id="S02", name="徐汇店"),
                   Guide(tenant="acme", userid="lina", name="李娜", store_id="S01"),
                   Guide(tenant="acme", userid="wangfang", name="王芳", store_id="S02")])
        s.add_all([Customer(tenant="acme", external_userid=x, name=x, created_at=at)
                   for x, _, at in adds])
        s.add_all([Follow(tenant="acme", guide=g, external_userid=x, status="active",
                          added_at=at) for x, g, at in adds])
        s.add_all([FollowEvent(tenant="acme", guide=g, external_userid=x, action="added",
                               at=at) for x, g, at in adds])
        s.add_all([Binding(tenant="acme", external_userid=x, guide=g, started_at=at)
                   for x, g, at in adds])
    for order_no, fen, day in (("TG-1", 30000, 10), ("TG-2", 15050, 12)):
        items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": fen}]
        status, body = await post_settled(stack, paid(
            order_no, customer="wmT1", items=items, store="S01",
            paid_at=NOV + timedelta(days=day)))
        assert status == 200, body
    await upkeep(stack)


def _one(rows: list[dict[str, Any]], subject: str) -> dict[str, Any]:
    return next(r for r in rows if r["id"] == subject)


async def test_targets_set_by_the_api_read_back_with_the_months_figures(stack: Stack) -> None:
    await month_of_sales(stack)
    status, body = await stack.admin(f"/targets/{PERIOD}", method="PUT", json={
        "guides": {"lina": {"adds": 4, "gmv_fen": 90000}, "wangfang": {"adds": 10}},
        "stores": {"S01": {"gmv_fen": 45050}, "S02": {}}})
    assert status == 200, body
    assert (body["period"], body["from"], body["to"]) == (PERIOD, "2026-11-01", "2026-11-30")
    lina = _one(body["guides"], "lina")
    assert lina["adds"] == {"target": 4, "actual": 3, "completion": 0.75}
    assert lina["gmv_fen"] == {"target": 90000, "actual": 45050, "completion": 0.5006}
    wang = _one(body["guides"], "wangfang")  # December's add is not November's
    assert wang["adds"] == {"target": 10, "actual": 0, "completion": 0.0}
    assert wang["gmv_fen"] == {"target": None, "actual": 0, "completion": None}
    s01 = _one(body["stores"], "S01")
    assert s01["gmv_fen"] == {"target": 45050, "actual": 45050, "completion": 1.0}
    assert s01["adds"] == {"target": None, "actual": 3, "completion": None}
    assert [s["id"] for s in body["stores"]] == ["S01"]  # a subject without targets: none
    status, again = await stack.admin(f"/targets/{PERIOD}")
    assert status == 200 and again == body
    status, other = await stack.admin("/targets/2026-10")
    assert status == 200 and other["guides"] == [] and other["stores"] == []

    # a PUT replaces the month's targets: wangfang's are gone
    status, body = await stack.admin(f"/targets/{PERIOD}", method="PUT",
                                     json={"guides": {"lina": {"adds": 3}}})
    assert status == 200, body
    assert [g["id"] for g in body["guides"]] == ["lina"] and body["stores"] == []
    assert _one(body["guides"], "lina")["adds"]["completion"] == 1.0

    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        document = await resp.json()
    path = document["paths"]["/api/v1/{tenant}/targets/{period}"]
    assert {"get", "put"} <= set(path)


async def test_bad_targets_are_refused_naming_the_field_and_change_nothing(
        stack: Stack) -> None:
    await month_of_sales(stack)
    status, body = await stack.admin(f"/targets/{PERIOD}", method="PUT",
                                     json={"guides": {"lina": {"adds": 30}}})
    assert status == 200, body
    cases = [
        ({"guides": {"nobody": {"adds": 1}}}, "guides.nobody"),
        ({"stores": {"S99": {"gmv_fen": 100}}}, "stores.S99"),
        ({"guides": {"lina": {"adds": -1}}}, "guides.lina.adds"),
        ({"guides": {"lina": {"gmv_fen": 10**13}}}, "guides.lina.gmv_fen"),
        ({"guides": {"lina": {"adds": "30"}}}, "guides.lina.adds"),
        ({"guides": {"lina": {"adds": 1.5}}}, "guides.lina.adds"),
        ({"guides": {"lina": {"visits": 1}}}, "guides.lina.visits"),
        ({"shops": {}}, "shops"),
    ]
    for payload, field in cases:
        status, body = await stack.admin(f"/targets/{PERIOD}", method="PUT", json=payload)
        assert status == 400, (payload, body)
        assert body["field"] == field, (payload, body)
        assert body["error"].startswith(f"{field}: ") and body["reason"], body
    status, body = await stack.admin("/targets/2026-13", method="PUT", json={})
    assert status == 400 and body["field"] == "period", body
    status, body = await stack.admin("/targets/2026-13")
    assert status == 400 and body["field"] == "period", body
    _, body = await stack.admin(f"/targets/{PERIOD}")
    assert [(g["id"], g["adds"]["target"]) for g in body["guides"]] == [("lina", 30)]


def _cells(html: str, table: str, attr: str, subject: str) -> tuple[str, str] | None:
    """A row's target cells (adds, GMV) on the page's table; None when it has none."""
    section = re.search(rf'<table id="{table}">.*?</table>', html, re.S)
    assert section, html
    row = re.search(rf'<tr {attr}="{subject}">(.*?)</tr>', section.group(0), re.S)
    assert row, (subject, section.group(0))
    adds = re.search(r'data-target="adds">([^<]*)<', row.group(1))
    gmv = re.search(r'data-target="gmv">([^<]*)<', row.group(1))
    return (adds.group(1), gmv.group(1)) if adds and gmv else None


async def _november_with_targets(stack: Stack) -> None:
    """month_of_sales, and November's targets: lina 4 adds and ¥900.00, S01 30 adds."""
    await month_of_sales(stack)
    status, body = await stack.admin(f"/targets/{PERIOD}", method="PUT", json={
        "guides": {"lina": {"adds": 4, "gmv_fen": 90000}},
        "stores": {"S01": {"adds": 30}}})
    assert status == 200, body


async def test_the_console_shows_a_months_targets_and_its_form_sets_them(
        stack: Stack) -> None:
    await _november_with_targets(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/guides?{NOVEMBER}")
        assert status == 200
        assert _cells(html, "leaderboard", "data-guide", "lina") == (
            "3 / 4 · 75%", "¥450.50 / ¥900.00 · 50%")
        assert _cells(html, "leaderboard", "data-guide", "wangfang") == ("—", "—")
        assert f'href="/console/acme/targets?period={PERIOD}"' in html
        status, html, _ = await console.get(f"/console/acme/stores?{NOVEMBER}")
        assert status == 200
        assert _cells(html, "stores", "data-store", "S01") == ("3 / 30 · 10%", "—")
        # a range that is not one calendar month shows no targets
        for query in ("from=2026-11-02&to=2026-11-30", "from=2026-11-01&to=2026-11-29",
                      "from=2026-10-01&to=2026-11-30"):
            _, html, _ = await console.get(f"/console/acme/guides?{query}")
            assert _cells(html, "leaderboard", "data-guide", "lina") is None, query
            assert "targets?period=" not in html
            _, html, _ = await console.get(f"/console/acme/stores?{query}")
            assert _cells(html, "stores", "data-store", "S01") is None, query

        # the form: shown with the month's targets, saved (CSRF), refused when not a number
        status, html, _ = await console.get(f"/console/acme/targets?period={PERIOD}")
        assert status == 200
        assert 'name="guides.lina.adds" value="4"' in html
        assert 'name="guides.lina.gmv" value="900.00"' in html
        assert 'name="stores.S02.adds" value=""' in html
        form = {"_csrf": csrf_in(html), "period": PERIOD, "guides.lina.adds": "",
                "guides.lina.gmv": "¥1,000", "guides.wangfang.adds": "5",
                "guides.wangfang.gmv": "", "stores.S01.adds": "", "stores.S01.gmv": "",
                "stores.S02.adds": "8", "stores.S02.gmv": "20.5"}
        status, _, _ = await console.post("/console/acme/targets",
                                          {**form, "_csrf": "forged"})
        assert status == 403
        status, html, _ = await console.post("/console/acme/targets",
                                             {**form, "stores.S02.adds": "八"})
        assert status == 400 and "的新增客户目标须为不小于 0 的整数" in html, html
        assert "stores.S02" not in html  # named by the store, not its field path
        status, html, _ = await console.post("/console/acme/targets",
                                             {**form, "guides.wangfang.adds": "-3"})
        assert status == 400 and "的新增客户目标须为不小于 0 的整数" in html, html
        assert "guides.wangfang" not in html
        _, body = await stack.admin(f"/targets/{PERIOD}")
        assert [g["id"] for g in body["guides"]] == ["lina"]  # refused: nothing changed
        status, _, resp = await console.post("/console/acme/targets", form)
        assert status == 303
        assert resp.headers["Location"] == f"/console/acme/targets?period={PERIOD}&done=1"
        _, body = await stack.admin(f"/targets/{PERIOD}")
        assert {g["id"]: (g["adds"]["target"], g["gmv_fen"]["target"])
                for g in body["guides"]} == {"lina": (None, 100000), "wangfang": (5, None)}
        assert {s["id"]: (s["adds"]["target"], s["gmv_fen"]["target"])
                for s in body["stores"]} == {"S02": (8, 2050)}
        status, html, _ = await console.get(f"/console/acme/targets?period={PERIOD}&done=1")
        assert status == 200 and "该月目标已保存" in html
        assert _cells(html, "targets-guides", "data-guide", "lina") == (
            "3", "¥450.50 / ¥1,000.00 · 45%")
        _, html, _ = await console.get(f"/console/acme/guides?{NOVEMBER}&lang=en")
        assert _cells(html, "leaderboard", "data-guide", "wangfang") == ("0 / 5 · 0%", "—")
        assert "Targets for 2026-11" in html
        status, html, _ = await console.get("/console/acme/targets?period=2026-13")
        assert status == 400
    finally:
        await console.close()


async def test_the_guides_and_stores_csv_carry_the_months_targets(stack: Stack) -> None:
    """The guides and stores CSV end with target_month, target_adds and target_gmv_fen:
    filled for a one-month range where the row has a target (money in integer fen), empty
    otherwise; the columns are there for every range."""
    await _november_with_targets(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")

        async def rows(page: str, query: str, key: str) -> dict[str, dict[str, str]]:
            status, text, resp = await console.get(f"/console/acme/{page}?{query}&format=csv")
            assert status == 200 and resp.content_type == "text/csv"
            table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
            assert list(table[0])[-3:] == ["target_month", "target_adds", "target_gmv_fen"]
            return {r[key]: {k: r[k] for k in list(r)[-3:]} for r in table}

        guides = await rows("guides", NOVEMBER, "guide")
        assert guides["lina"] == {"target_month": PERIOD, "target_adds": "4",
                                  "target_gmv_fen": "90000"}
        assert guides["wangfang"] == {"target_month": "", "target_adds": "",
                                      "target_gmv_fen": ""}
        stores = await rows("stores", NOVEMBER, "store_id")
        assert stores["S01"] == {"target_month": PERIOD, "target_adds": "30",
                                 "target_gmv_fen": ""}
        assert set(stores["S02"].values()) == {""}
        other = await rows("guides", "from=2026-11-02&to=2026-11-30", "guide")
        assert set(other["lina"].values()) == {""}  # not one calendar month
    finally:
        await console.close()


async def test_last_months_targets_are_copied_where_the_month_has_none(stack: Stack) -> None:
    """复制上月目标: the API copies a month's targets into another month for the guides and
    stores that month has none for, never overwriting one; the console's button copies the
    month before into the page's month (CSRF) and says how many."""
    await month_of_sales(stack)
    status, body = await stack.admin("/targets/2026-10", method="PUT", json={
        "guides": {"lina": {"adds": 5, "gmv_fen": 100000}, "wangfang": {"adds": 7}},
        "stores": {"S01": {"gmv_fen": 200000}, "S02": {"adds": 1}}})
    assert status == 200, body
    status, body = await stack.admin(f"/targets/{PERIOD}", method="PUT",
                                     json={"guides": {"lina": {"adds": 4}}})
    assert status == 200, body

    def targets(month: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
        return {r["id"]: (r["adds"]["target"], r["gmv_fen"]["target"])
                for group in ("guides", "stores") for r in month[group]}

    status, body = await stack.admin(f"/targets/{PERIOD}/copy-from/2026-10", method="POST")
    assert status == 200, body
    assert (body["copied"], body["kept"], body["period"]) == (3, 1, PERIOD)
    assert targets(body) == {"lina": (4, None), "wangfang": (7, None), "S01": (None, 200000),
                             "S02": (1, None)}  # lina's own target kept whole
    assert _one(body["guides"], "lina")["adds"]["actual"] == 3  # the month's figures
    status, again = await stack.admin(f"/targets/{PERIOD}/copy-from/2026-10", method="POST")
    assert (status, again["copied"], again["kept"]) == (200, 0, 4)
    assert targets(again) == targets(body)
    for path, field in ((f"/targets/{PERIOD}/copy-from/{PERIOD}", "source"),
                        (f"/targets/{PERIOD}/copy-from/2026-13", "source"),
                        ("/targets/2026-1/copy-from/2026-10", "period")):
        status, refused = await stack.admin(path, method="POST")
        assert status == 400 and refused["field"] == field, (path, refused)
    _, unchanged = await stack.admin(f"/targets/{PERIOD}")
    assert targets(unchanged) == targets(body)

    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/targets?period=2026-12")
        assert status == 200 and "复制上月（2026-11）目标" in html
        form = {"period": "2026-12"}
        status, _, _ = await console.post("/console/acme/targets/copy", form)
        assert status == 403  # no CSRF token
        status, _, resp = await console.post("/console/acme/targets/copy",
                                             {**form, "_csrf": csrf_in(html)})
        assert status == 303
        assert resp.headers["Location"] == (
            "/console/acme/targets?period=2026-12&copied=4&kept=0#notice")
        status, html, _ = await console.get("/console/acme/targets?period=2026-12"
                                            "&copied=4&kept=0")
        assert status == 200 and html.count('id="notice"') == 1
        assert "已从 2026-11 复制 4 项目标；0 项本月已有目标" in html
    finally:
        await console.close()
    _, december = await stack.admin("/targets/2026-12")
    assert targets(december) == targets(body)
