"""The lists HQ pages through and exports: customers (console and admin API) and orders. Every
row once across the pages (ties in time included), the customer status filter's three
meanings, the CSV of a whole search or range, and refusals of bad filters and cursors."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from guidebot.db.models import CorpTag, Customer, CustomerTag, Follow, Store
from guidebot.db.models_commerce import Order
from guidebot.db.models_kf import OptOut
from guidebot.stats.records import PAGE
from tests.support.console import Console, seed, upkeep
from tests.support.stack import Stack

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


async def add_many(stack: Stack, n: int) -> set[str]:
    """n customers; every third shares its arrival time with the one before (ties)."""
    rows = [Customer(tenant="acme", external_userid=f"wmPage{i:04d}", name=f"客户{i:04d}",
                     created_at=T0 + timedelta(seconds=i - i % 3)) for i in range(n)]
    async with stack.runtime.services.db.write() as s:
        s.add_all(rows)
    return {r.external_userid for r in rows}


def _ids(html: str) -> list[str]:
    return re.findall(r'/console/acme/customers/(wmPage\d+)"', html)


def _next(html: str) -> str | None:
    found = re.search(r'id="next-page" href="\?([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_the_console_pages_through_every_customer_once(stack: Stack) -> None:
    everyone = await add_many(stack, 2 * PAGE + 7)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/customers")
        assert status == 200 and 'id="first-page"' not in html
        pages = [_ids(html)]
        query = _next(html)
        while query is not None:
            status, html, _ = await console.get(f"/console/acme/customers?{query}")
            assert status == 200 and 'id="first-page"' in html
            pages.append(_ids(html))
            query = _next(html)
        assert [len(p) for p in pages] == [PAGE, PAGE, 7]
        seen = [i for p in pages for i in p]
        assert len(seen) == len(set(seen)) and set(seen) == everyone
        assert seen == sorted(seen, reverse=True)  # newest first; ties by id, descending
        status, html, _ = await console.get("/console/acme/customers?after=not-a-cursor")
        assert status == 400 and "翻页参数无效" in html
    finally:
        await console.close()


async def seed_statuses(stack: Stack) -> None:
    """wmFollow follows lina; wmLost deleted lina and was deleted by wang; wmOut follows wang
    and opted out; wmBare has no relation (an order or 微信客服 brought it). wmFollow carries
    新客 (a corp tag WeCom has) and a corp tag since deleted."""
    await stack.runtime.services.tags.sync("acme")
    async with stack.runtime.services.db.read() as s:
        new = (await s.execute(select(CorpTag.tag_id).where(
            CorpTag.tenant == "acme", CorpTag.name == "新客"))).scalar_one()
    async with stack.runtime.services.db.write() as s:
        s.add_all([
            Customer(tenant="acme", external_userid=x, name=n, created_at=T0 + timedelta(hours=h))
            for h, (x, n) in enumerate([("wmFollow", "=HYPERLINK(1)"), ("wmLost", "流失顾客"),
                                        ("wmOut", "退订顾客"), ("wmBare", "")])])
        s.add_all([
            Follow(tenant="acme", guide="lina", external_userid="wmFollow", status="active",
                   added_at=T0),
            Follow(tenant="acme", guide="lina", external_userid="wmLost",
                   status="deleted_by_customer", added_at=T0, ended_at=T0 + timedelta(days=1)),
            Follow(tenant="acme", guide="wang", external_userid="wmLost",
                   status="deleted_by_guide", added_at=T0, ended_at=T0 + timedelta(days=2)),
            Follow(tenant="acme", guide="wang", external_userid="wmOut", status="active",
                   added_at=T0),
            CorpTag(tenant="acme", tag_id="et-old", name="旧标签", deleted=True),
            CustomerTag(tenant="acme", external_userid="wmFollow", guide="lina", tag_id=new),
            CustomerTag(tenant="acme", external_userid="wmFollow", guide="lina", tag_id="et-old"),
            OptOut(tenant="acme", external_userid="wmOut", msgid="kf-msg-1")])


async def test_the_status_filter_and_the_csv_export(stack: Stack) -> None:
    await seed_statuses(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")

        async def listed(status: str) -> set[str]:
            code, html, _ = await console.get(f"/console/acme/customers?status={status}")
            assert code == 200
            return set(re.findall(r'/console/acme/customers/(wm[A-Za-z]+)"', html))

        assert await listed("") == {"wmFollow", "wmLost", "wmOut", "wmBare"}
        assert await listed("following") == {"wmFollow", "wmOut"}
        assert await listed("lost") == {"wmLost"}
        assert await listed("opted_out") == {"wmOut"}
        _, html, _ = await console.get("/console/acme/customers?status=lost")
        assert "已流失" in html and 'id="next-page"' not in html
        assert "流失时间" in html and "2026-11-04 16:00" in html  # the last relation's end
        export = re.search(r'id="export" href="\?([^"]+)"', html)
        assert export and export.group(1).replace("&amp;", "&") == "status=lost&format=csv"

        code, body, resp = await console.get("/console/acme/customers?format=csv")
        assert code == 200 and resp.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in resp.headers["Content-Disposition"]
        assert body.startswith("\ufeff")
        rows = {r["external_userid"]: r for r in csv.DictReader(io.StringIO(body[1:]))}
        assert set(rows) == {"wmFollow", "wmLost", "wmOut", "wmBare"}
        assert rows["wmFollow"]["name"] == "'=HYPERLINK(1)"  # a formula stays text
        assert (rows["wmFollow"]["status"], rows["wmFollow"]["guides"],
                rows["wmFollow"]["tags"]) == ("following", "lina", "新客")
        assert (rows["wmLost"]["status"], rows["wmLost"]["guides"],
                rows["wmLost"]["former_guides"]) == ("lost", "", "lina;wang")
        assert (rows["wmOut"]["opted_out"], rows["wmBare"]["status"]) == ("yes", "none")
        assert rows["wmFollow"]["added_at"] == "2026-11-02 16:00:00"  # Asia/Shanghai
        assert (rows["wmLost"]["lost_at"], rows["wmFollow"]["lost_at"]) == (
            "2026-11-04 16:00:00", "")

        code, body, _ = await console.get("/console/acme/customers?status=lost&format=csv")
        assert [r["external_userid"] for r in csv.DictReader(io.StringIO(body[1:]))] == [
            "wmLost"]
        # the added-time filter, in the tenant's days (wmOut 18:00, wmBare 19:00 Shanghai)
        assert await listed("&added_from=2026-11-02&added_to=2026-11-02") == {
            "wmFollow", "wmLost", "wmOut", "wmBare"}
        code, body, _ = await console.get(
            "/console/acme/customers?added_from=2026-11-03&format=csv")
        assert list(csv.DictReader(io.StringIO(body[1:]))) == []
        code, html, _ = await console.get("/console/acme/customers?added_from=2026-11-3")
        assert code == 400 and "YYYY-MM-DD" in html
        code, html, _ = await console.get(
            "/console/acme/customers?added_from=2026-11-03&added_to=2026-11-02")
        assert code == 400 and "开始日期不能晚于结束日期" in html
        code, html, _ = await console.get("/console/acme/customers?status=gone")
        assert code == 400 and "状态须为" in html
        code, html, _ = await console.get("/console/acme/customers?status=gone&format=csv")
        assert code == 400 and "状态须为" in html
    finally:
        await console.close()


async def test_the_admin_api_lists_customers_a_page_at_a_time(stack: Stack) -> None:
    everyone = await add_many(stack, 25)
    await seed_statuses(stack)
    seen: list[str] = []
    after = ""
    while True:
        status, body = await stack.admin(f"/customers?limit=10&after={after}")
        assert status == 200, body
        seen += [c["external_userid"] for c in body["customers"]]
        if body["next"] is None:
            break
        after = body["next"]
    assert len(seen) == len(set(seen)) == 29 and set(seen) == everyone | {
        "wmFollow", "wmLost", "wmOut", "wmBare"}

    status, body = await stack.admin("/customers?status=lost")
    assert status == 200 and body["next"] is None
    (lost,) = body["customers"]
    assert lost["external_userid"] == "wmLost" and lost["status"] == "lost"
    assert [(f["guide"], f["status"]) for f in lost["follows"]] == [
        ("lina", "deleted_by_customer"), ("wang", "deleted_by_guide")]
    assert lost["follows"][0]["ended_at"].startswith("2026-11-03T08:00:00")
    assert lost["lost_at"].startswith("2026-11-04T08:00:00")
    status, body = await stack.admin("/customers?added_from=2026-11-02&added_to=2026-11-02"
                                     "&status=following")
    assert status == 200 and {c["external_userid"] for c in body["customers"]} == {
        "wmFollow", "wmOut"}
    status, body = await stack.admin("/customers?added_to=2026-11-01")  # before them all
    assert status == 200 and body["customers"] == []
    for bad in ("added_from=0001-01-01", "added_to=9999-12-31", "added_from=2026-02-30",
                "added_from=2026-11-03&added_to=2026-11-02"):
        status, body = await stack.admin(f"/customers?{bad}")
        assert status == 400, (bad, body)
    status, body = await stack.admin("/customers?tag=新客&guide=lina")
    assert [c["external_userid"] for c in body["customers"]] == ["wmFollow"]
    assert body["customers"][0]["tags"] == ["新客"]  # a deleted corp tag is not listed

    for query, field in (("status=gone", "status"), ("after=xyz", "after"),
                         ("limit=0", "limit"), ("limit=1001", "limit"),
                         ("colour=red", "colour")):
        status, body = await stack.admin(f"/customers?{query}")
        assert status == 400 and body["field"] == field, (query, body)
    status, body = await stack.admin("/customers", tenant="acme", token="wrong")
    assert status == 403


async def test_the_orders_page_pages_through_a_range_and_exports_it(stack: Stack) -> None:
    """PAGE + 3 orders in range (every other pair paid at the same second), one the day
    after the range; the pages give each order of the range once, the CSV all of them."""
    day = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
    n = PAGE + 3
    async with stack.runtime.services.db.write() as s:
        s.add_all([Order(tenant="acme", order_no=f"CO-P{i:04d}",
                         paid_at=day + timedelta(seconds=i - i % 2), amount_fen=100 + i,
                         rule="none", rule_version_id=0, evidence="{}", lines="[]",
                         external_userid="wmFollow" if i == 0 else None)
                   for i in range(n)])
        s.add(Order(tenant="acme", order_no="CO-NEXTDAY", paid_at=day + timedelta(days=1),
                    amount_fen=1, rule="none", rule_version_id=0, evidence="{}", lines="[]"))
        s.add(Customer(tenant="acme", external_userid="wmFollow", name="=cmd"))
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        query: str | None = "from=2026-11-20&to=2026-11-20"
        pages = []
        while query is not None:
            status, html, _ = await console.get(f"/console/acme/orders?{query}")
            assert status == 200
            pages.append(re.findall(r'/console/acme/orders/(CO-[A-Z0-9]+)"', html))
            query = _next(html)
        assert [len(p) for p in pages] == [PAGE, 3]
        seen = [o for p in pages for o in p]
        assert seen == [f"CO-P{i:04d}" for i in reversed(range(n))]

        status, body, resp = await console.get(
            "/console/acme/orders?from=2026-11-20&to=2026-11-20&format=csv")
        assert status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))
        assert [r["order_no"] for r in rows] == seen
        first = rows[-1]
        assert (first["paid_at"], first["amount_fen"], first["customer"]) == (
            "2026-11-20 10:00:00", "100", "'=cmd")
        status, html, _ = await console.get("/console/acme/orders?from=2026-11-20&after=zz")
        assert status == 400 and "翻页参数无效" in html
    finally:
        await console.close()


async def test_range_pages_offer_presets_and_mark_the_one_shown(stack: Stack) -> None:
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        today = datetime.now(stack.tenant().tz).date()
        for path in ("/", "/guides", "/stores", "/orders"):
            status, html, _ = await console.get(f"/console/acme{path}")
            assert status == 200
            # (two presets may name the same days: on the 7th, 近 7 天 is 本月 so far)
            links = re.findall(r'href="\?([^"]+)"[^>]*>([^<]+)</a></li>', html)
            week = f"from={(today - timedelta(days=6)).isoformat()}&amp;to={today.isoformat()}"
            assert (week, "近 7 天") in links, (path, links)
            month = f"from={(today - timedelta(days=29)).isoformat()}&amp;to={today.isoformat()}"
            current = re.findall(r'href="\?([^"]+)" aria-current="page">([^<]+)<', html)
            assert (month, "近 30 天") in current, path  # the default range is marked
            assert {query for query, _ in current} == {month}, path  # and only its days
        status, html, _ = await console.get("/console/acme/stores?store=S1")
        assert f"store=S1&amp;from={today.isoformat()}" in html  # the store is kept
    finally:
        await console.close()


async def test_guides_and_stores_export_what_their_pages_show(stack: Stack) -> None:
    """The seeded scenario's leaderboard and store table as CSV (money in fen), and a store
    with nothing counted in the range listed with zeros."""
    seeded = await seed(stack)
    await upkeep(stack)
    async with stack.runtime.services.db.write() as s:
        s.add(Store(tenant="acme", store_id="S-QUIET", name="安静门店"))
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/stores")
        assert status == 200 and 'data-store="S-QUIET"' in html
        export = re.search(r'id="export" href="\?([^"]+)"', html)
        assert export is not None
        status, body, resp = await console.get(
            "/console/acme/stores?" + export.group(1).replace("&amp;", "&"))
        assert status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        stores = {r["store_id"]: r for r in csv.DictReader(io.StringIO(body[1:]))}
        assert stores["S-QUIET"]["store_name"] == "安静门店"
        assert (stores["S-QUIET"]["orders_all"], stores["S-QUIET"]["gmv_fen"]) == ("0", "0")
        assert sum(int(r["orders_all"]) for r in stores.values()) == seeded.orders_all
        assert sum(int(r["adds_code"]) for r in stores.values()) == seeded.adds_code

        status, html, _ = await console.get("/console/acme/guides")
        export = re.search(r'id="export" href="\?([^"]+)"', html)
        assert export is not None
        status, body, _ = await console.get(
            "/console/acme/guides?" + export.group(1).replace("&amp;", "&"))
        guides = {r["guide"]: r for r in csv.DictReader(io.StringIO(body[1:]))}
        assert guides["lina"]["rank"] == "1" and guides["lina"]["gmv_fen"] == "22505"
        assert sum(int(r["orders"]) for r in guides.values()) == seeded.orders
        assert sum(int(r["commission_fen"]) for r in guides.values()) == 975
    finally:
        await console.close()
