"""The HQ console over HTTP: sign-in, tenant isolation, the figures of a seeded scenario,
its forms (CSRF, adjustments, settlement, retry) and the metrics API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guidebot.db.models import FollowEvent, OutboxItem
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import commerce_ledger as ledger_repo
from guidebot.stats.definitions import yuan
from guidebot.web.pages import console_auth
from guidebot.web.signin_throttle import SIGNINS
from tests.scenario.test_sop_cards import CARD_MESSAGE  # a card with the catalog's SKU
from tests.support.console import Console, csrf_in, figure, seed, upkeep
from tests.support.stack import Stack, library_copy, start_stack

SOP = "/sops/new_customer_nurture"
PAGES = ("/", "/guides", "/stores", "/customers", "/orders", "/commissions", "/sops", SOP,
         "/content", "/outbox", "/customers/wmNOBODY", "/orders/CO-1", "/materials",
         "/materials/pictures/nosuch.jpg", "/transfers", "/transfers/1",
         "/groups", "/groups/wrNOSUCH", "/channels", "/channels/1", "/drops/double12_warmup",
         "/targets", "/handoffs", "/watch", "/deletions", "/segments", "/segments/new",
         "/segments/1", "/segments/1/edit", "/tags", "/group-codes", "/group-codes/1",
         "/audit", "/nope", "/nope/deeper")  # an unknown page answers as a known one
POSTS = ("/commissions/adjustments", "/commissions/settle", "/outbox/1/retry",
         f"{SOP}/switch", f"{SOP}/enroll", f"{SOP}/stop", "/materials/review", "/materials/new",
         "/customers/wmNOBODY/opt-in", "/transfers", "/transfers/check",
         "/transfers/groups", "/groups/sync", "/channels", "/groups/wrNOSUCH/owner",
         "/drops/double12_warmup/fire", "/channels/1", "/channels/1/delete",
         "/drops/double12_warmup/stop", "/channels/quota", "/targets", "/drops",
         "/drops/hq-1/cancel", "/targets/copy", "/segments", "/segments/1",
         "/segments/1/delete", "/segments/1/tag", "/tags", "/tags/et1", "/tags/et1/delete",
         "/tag-groups/et1/delete", "/group-codes", "/group-codes/1",
         "/group-codes/1/delete")


async def test_sign_in_gives_a_signed_httponly_session_and_sign_out_ends_it(
        stack: Stack) -> None:
    console = Console(stack)
    try:
        status, _, resp = await console.get("/console/acme/")
        assert status == 303 and resp.headers["Location"].startswith("/console/login")
        bad = await console.login("acme", "not-the-token")
        assert bad.status == 401
        good = await console.login("acme", "acme-admin-token")
        assert good.status == 303 and good.headers["Location"] == "/console/acme/"
        cookie = good.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "acme-admin-token" not in cookie
        status, html, _ = await console.get("/console/acme/")
        assert status == 200 and 'data-figure="adds"' in html
        status, _, _ = await console.post("/console/logout", {"tenant": "acme"})
        assert status == 403  # no CSRF token
        status, _, resp = await console.post("/console/logout",
                                             {"tenant": "acme", "_csrf": csrf_in(html)})
        assert status == 303
        status, _, resp = await console.get("/console/acme/")
        assert status == 303 and resp.headers["Location"].startswith("/console/login")
    finally:
        await console.close()


async def test_login_form_refuses_a_post_without_its_csrf_token(stack: Stack) -> None:
    async with stack.http.post(f"{stack.bot_url}/console/login", allow_redirects=False,
                               data={"tenant": "acme", "token": "acme-admin-token"}) as resp:
        assert resp.status == 403
        assert console_auth.COOKIE not in resp.cookies


async def test_rotating_the_admin_token_signs_every_session_out(stack: Stack) -> None:
    acme = stack.tenant("acme")
    value = console_auth.issue(acme)
    assert console_auth.verify(acme, value) is not None
    from dataclasses import replace

    rotated = replace(acme, admin_token="a-new-token")
    assert console_auth.verify(rotated, value) is None


async def test_every_console_route_refuses_other_tenants_bad_cookies_and_nobody(
        stack: Stack) -> None:
    await seed(stack)
    await upkeep(stack)
    _, body = await stack.admin("/sops")
    enrolled_before = next(s for s in body["sops"]
                           if s["id"] == "new_customer_nurture")["enrollments"].get("active", 0)
    stack.app[SIGNINS].failures = 10 * len(PAGES)  # each page's wrong bearer, unthrottled
    beta = Console(stack)
    forged = Console(stack)
    nobody = Console(stack)
    try:
        assert (await beta.login("beta", "beta-admin-token")).status == 303
        genuine = console_auth.issue(stack.tenant("acme"))
        body, _, _ = genuine.partition(".")
        forged.http.cookie_jar.update_cookies({console_auth.COOKIE: f"{body}.{'A' * 43}"})
        for path in PAGES:
            status, html, _ = await beta.get(f"/console/acme{path}")
            assert status == 403, path
            assert "CO-1" not in html and "¥" not in html, path
            for client in (forged, nobody):
                status, html, resp = await client.get(f"/console/acme{path}")
                assert status == 303, path
                assert resp.headers["Location"].startswith("/console/login"), path
                assert "¥" not in html
            status, _, _ = await nobody.get(f"/console/acme{path}",
                                            headers={"Authorization": "Bearer beta-admin-token"})
            assert status == 403, path
            status, _, _ = await nobody.get(f"/console/nosuch{path}")
            assert status == 404, path
        for path in POSTS:
            for client in (beta, forged, nobody):
                status, _, _ = await client.post(f"/console/acme{path}",
                                                 {"_csrf": "x", "guide": "lina",
                                                  "amount_fen": "100", "reason": "r",
                                                  "operator": "o", "period": "2026-01",
                                                  "enabled": "0", "guides": "lina"})
                assert status in (303, 403), (path, status)
                if status == 303:
                    assert client is not beta
        status, body = await stack.admin("/commissions/statements?period="
                                         + datetime.now(UTC).strftime("%Y-%m"))
        assert all(r["adjustment_fen"] == 0 for r in body["statements"])  # nothing booked
        status, body = await stack.admin("/sops")
        nurture = next(s for s in body["sops"] if s["id"] == "new_customer_nurture")
        assert not nurture["switched_off"] and nurture["enabled"]  # nothing switched
        assert nurture["enrollments"].get("active", 0) == enrolled_before
    finally:
        for c in (beta, forged, nobody):
            await c.close()


async def test_overview_shows_the_scenario_and_the_api_gives_the_same_figures(
        stack: Stack) -> None:
    seeded = await seed(stack)
    assert await upkeep(stack) > 0
    status, html, _ = await Console(stack).get(
        "/console/acme/", headers={"Authorization": "Bearer acme-admin-token"})
    assert status == 200
    expected = {"adds": "4", "deletions": "1", "net_growth": "3",
                "adds_code": str(seeded.adds_code), "adds_other": str(seeded.adds_other),
                "new_customers_code": "2", "new_customers_other": "2",
                "first_purchases": "2", "repurchases": "1", "orders": "3",
                "gmv": seeded.gmv, "orders_new": "2", "gmv_new": seeded.gmv_new,
                "gmv_existing": seeded.gmv_existing, "orders_all": "4",
                "gmv_all": seeded.gmv_all, "commission": seeded.commission,
                "layer_new": "3", "layer_lost": "1", "tier_mid": "1", "tier_low": "1",
                "tier_none": "2"}
    assert {k: figure(html, k) for k in expected} == expected
    assert '<abbr class="def" tabindex="0" title="净增长 = 加粉数 − 删粉数。">' in html

    status, body = await stack.admin("/metrics/overview")
    assert status == 200
    totals = body["totals"]
    assert (totals["adds"], totals["deletions"], totals["net_growth"]) == (4, 1, 3)
    assert yuan(totals["gmv_fen"]) == seeded.gmv and totals["gmv_new_fen"] == 22505
    assert body["funnel"] == {"added": 4, "first_purchase": 2, "repurchase": 1}
    assert body["layers"] == {"new": 3, "active": 0, "dormant": 0, "lost": 1}
    assert body["value_tiers"] == {"high": 0, "mid": 1, "low": 1, "none": 2}
    tomorrow = (datetime.now(stack.tenant().tz) + timedelta(days=1)).date().isoformat()
    status, body = await stack.admin(f"/metrics/overview?from={tomorrow}&to={tomorrow}")
    assert (body["totals"]["base"], body["totals"]["adds"]) == (4, 0)  # known before the day
    status, body = await stack.admin("/metrics/overview?from=2026-13-01")
    assert status == 400
    status, body = await stack.admin("/metrics/overview", tenant="beta")
    assert status == 200 and body["totals"]["adds"] == 0
    status, _ = await stack.admin("/metrics/overview", tenant="acme", token="beta-admin-token")
    assert status == 403


async def test_upkeep_as_it_goes_and_backfill_from_scratch_agree(stack: Stack) -> None:
    stats = stack.runtime.services.stats
    assert stats is not None
    await upkeep(stack)  # empty: sets nothing
    seeded = await seed(stack)
    # The job ran between the adds and the orders in production; here: after each part.
    await upkeep(stack)
    status, code = await stack.admin("/channels", method="POST", json={"guide": "wangfang"})
    assert status == 201
    late = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"])
    await stack.runtime.drain()
    await upkeep(stack)
    status, _ = await stack.admin("/commissions/adjustments", method="POST",
                                  json={"guide": "lina", "amount_fen": -25, "reason": "fix",
                                        "operator": "hq"})
    assert status == 201
    await upkeep(stack)
    today = datetime.now(stack.tenant().tz).date()
    incremental = await stats.overview("acme", today, today)
    guides_then = await stats.leaderboard("acme", today, today, "guide")
    await stats.backfill("acme")
    assert await stats.overview("acme", today, today) == incremental
    assert await stats.leaderboard("acme", today, today, "guide") == guides_then
    assert incremental["totals"]["adds_code"] == seeded.adds_code + 1
    assert incremental["totals"]["commission_fen"] == 975 - 25
    assert late["external_userid"]
    assert await upkeep(stack) == 0  # nothing counted twice


async def test_pages_show_the_scenario(stack: Stack) -> None:
    seeded = await seed(stack)
    await upkeep(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        _, html, _ = await console.get("/console/acme/guides")
        assert seeded.lina_gmv in html and "¥100.00" in html
        assert html.index('data-guide="lina"') < html.index('data-guide="wangfang"')
        _, html, _ = await console.get("/console/acme/stores")
        assert 'data-store="S01"' in html and seeded.gmv_all in html
        assert 'href="/console/acme/guides?store=S01&amp;from=' in html  # a store's guides
        _, everyone, _ = await console.get("/console/acme/guides")
        _, html, _ = await console.get("/console/acme/guides?store=S01")
        shown = set(re.findall(r'data-guide="([^"]+)"', html))
        _, body = await stack.admin("/guides")
        in_s01 = {g["userid"] for g in body["guides"] if g.get("store") == "S01"}
        assert 'id="store-filter"' in html and shown == in_s01 != set(), (shown, in_s01)
        assert shown < set(re.findall(r'data-guide="([^"]+)"', everyone))
        assert '<input type="hidden" name="store" value="S01">' in html  # kept by the range
        _, html, _ = await console.get("/console/acme/customers?q=张晓")
        assert "张晓雨" in html and "韩梅梅" not in html
        _, html, _ = await console.get("/console/acme/customers?guide=wangfang")
        assert "韩梅梅" in html and "张晓雨" not in html
        status, html, _ = await console.get("/console/acme/customers/wmNOBODY")
        assert status == 404 and "本品牌没有客户 wmNOBODY。" in html and "没有找到" not in html
        assert "<title>出错了 · 导购助手</title>" in html
        _, html, _ = await console.get(f"/console/acme/customers/{seeded.code_customers[0]}")
        assert "CO-1" in html and "CO-2" in html and "¥199.00" in html and "¥26.05" in html
        # Times in the tenant's zone, words in the page's language (no raw ISO, no codes).
        _, order = await stack.admin("/orders/CO-1")
        paid_local = datetime.fromisoformat(order["paid_at"]).astimezone(stack.tenant().tz)
        assert f"<td>{paid_local:%Y-%m-%d %H:%M}</td>" in html
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", html)
        assert "<td>正常</td>" in html and "<td>首购</td>" in html and "<td>复购</td>" in html
        channel = re.search(r'<dd id="channel">(.*?)</dd>', html, re.S).group(1)
        assert "lina" in channel and channel.endswith(" · c1"), channel  # store · guide · campaign
        _, html, _ = await console.get("/console/acme/orders/CO-1")
        assert f"{paid_local:%Y-%m-%d %H:%M:%S}" in html
        # The evidence in words (the rule, the guide, when), the raw JSON one click away.
        explained = re.search(r'<dl id="explained".*?</dl>', html, re.S).group(0)
        rule = order["attribution"]["rule"]
        words = {"share_link": "分享链接", "exclusive_guide": "专属导购", "store": "门店"}
        assert f"<dt>{words[rule]}</dt>" in explained and "lina" in explained, explained
        assert '<table id="ledger">' in html and "<th scope=\"row\">计佣</th>" in html
        _, html, _ = await console.get("/console/acme/orders")
        assert all(n in html for n in ("CO-1", "CO-2", "CO-3", "CO-4"))
        assert ">张晓雨</a>" in html and ">韩梅梅</a>" in html  # customers by name
        _, html, _ = await console.get("/console/acme/orders/CO-1")
        assert figure(html, "amount") == "¥199.00" and figure(html, "commission") == "¥5.97"
        assert ">张晓雨</a>" in html and "<h1>订单 CO-1</h1>" in html
        _, html, _ = await console.get("/console/acme/orders/CO-1?lang=en")
        assert "<h1>Order CO-1</h1>" in html  # one order: not the list's "Orders"
        await console.get("/console/acme/?lang=zh-CN")
        assert "lina" in re.search(r'<pre id="evidence">(.*?)</pre>', html, re.S).group(1)
        _, html, _ = await console.get("/console/acme/sops")
        assert 'id="sops"' in html and "library-errors" in html
        assert "<td>添加导购（渠道前缀 <code>" in html  # the trigger in words
        _, html, _ = await console.get("/console/acme/sops?sop=new_customer_nurture"
                                       "&added_at=2026-11-20T15:00")
        timeline = re.search(r'<table id="timeline">.*?</table>', html, re.S).group(0)
        cells = re.findall(r"<td>([^<]*)</td>", timeline)
        assert cells == ["2026-11-20 15:00", "欢迎语", "sop_new_welcome",
                         "2026-11-21 10:00", "群发任务", "sop_new_bestsellers",
                         "2026-11-23 10:00", "群发任务", "sop_new_coupon",
                         "2026-11-27 19:00", "提醒", "sop_new_followup"], cells
        status, html, _ = await console.get(f"/console/acme{SOP}")
        assert status == 200 and 'id="conversion"' in html and 'data-step="0"' in html
        _, html, _ = await console.get("/console/acme/guides?lang=en")
        assert "Guides leaderboard" in html
        _, html, _ = await console.get("/console/acme/guides")
        assert "Guides leaderboard" in html  # the language is kept in a cookie
    finally:
        await console.close()


async def test_commission_forms_need_csrf_and_book_adjustments_and_settle(
        stack: Stack) -> None:
    await seed(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        period = datetime.now(stack.tenant().tz).strftime("%Y-%m")
        status, html, _ = await console.get(f"/console/acme/commissions?period={period}")
        assert status == 200 and "¥6.75" in html  # lina: 597 + 78 fen
        form = {"guide": "lina", "amount": "-2.50", "reason": "sample", "operator": "hq"}
        status, _, _ = await console.post("/console/acme/commissions/adjustments", form)
        assert status == 403
        page = console.url(f"/console/acme/commissions?period={period}")
        status, html_bad, _ = await console.post("/console/acme/commissions/adjustments",
                                                 {**form, "amount": "1.005",
                                                  "_csrf": csrf_in(html)},
                                                 headers={"Referer": page})
        assert status == 400 and "提交的内容未通过检查：金额请填写元" in html_bad  # in Chinese
        assert f'href="/console/acme/commissions?period={period}" id="back"' in html_bad
        status, html_bad, _ = await console.post(
            "/console/acme/commissions/adjustments", {**form, "amount": "x",
                                                      "_csrf": csrf_in(html)},
            headers={"Referer": "https://elsewhere.example/console/acme/commissions"})
        assert status == 400 and 'id="back"' not in html_bad  # only this console's pages
        status, _, resp = await console.post("/console/acme/commissions/adjustments",
                                             {**form, "_csrf": csrf_in(html)})
        assert status == 303
        status, _, resp = await console.post("/console/acme/commissions/adjustments",
                                             {**form, "amount": "¥0.50", "_csrf": csrf_in(html)})
        assert status == 303
        _, body = await stack.admin(f"/commissions/statements?period={period}")
        lina = next(r for r in body["statements"] if r["guide"] == "lina")
        assert lina["adjustment_fen"] == -200  # -250 + 50 fen, exactly
        status, csv_text, resp = await console.get(
            f"/console/acme/commissions?period={period}&format=csv")
        assert status == 200 and resp.content_type == "text/csv" and "lina" in csv_text
        settle = {"period": period, "operator": "hq", "_csrf": csrf_in(html)}
        status, refused, _ = await console.post("/console/acme/commissions/settle", settle)
        assert status == 400 and "请勾选确认框" in refused  # the box was not ticked
        _, body = await stack.admin(f"/commissions/statements?period={period}")
        assert body["settled"] is False
        # a period with a trailing newline is no period: refused, nothing stored
        status, _, _ = await console.post("/console/acme/commissions/settle",
                                          {**settle, "period": f"{period}\n", "confirm": "yes"})
        assert status == 400
        status, _, _ = await console.get(
            f"/console/acme/commissions?period={period}%0A&format=csv")
        assert status == 400
        async with stack.runtime.services.db.read() as s:
            for stored in (period, f"{period}\n"):
                assert await ledger_repo.get_settlement(s, tenant="acme", period=stored) is None
        status, _, _ = await console.post("/console/acme/commissions/settle",
                                          {**settle, "confirm": "yes"})
        assert status == 303
        _, body = await stack.admin(f"/commissions/statements?period={period}")
        assert body["settled"] is True
    finally:
        await console.close()


async def test_a_dead_outbox_row_is_shown_with_its_error_and_retried(stack: Stack) -> None:
    db = stack.runtime.services.db
    async with db.write() as s:
        row = OutboxItem(tenant="acme", key="welcome:dead-one", kind="welcome", payload="{}",
                         status="dead", attempts=3, last_error="errcode 41051 sample")
        other = OutboxItem(tenant="beta", key="welcome:beta-dead", kind="welcome",
                           payload="{}", status="dead", attempts=3, last_error="beta")
        s.add(row)
        s.add(other)
        s.add(SopTask(tenant="acme", key="task-1", kind="guide_task", source="sop:dormant_winback",
                      step_index=1, guide="lina", message="sop_new_coupon", recipients=3,
                      confirmed=2, status="confirmed"))
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/outbox")
        assert "welcome:dead-one" in html and "errcode 41051 sample" in html
        assert "welcome:beta-dead" not in html
        dead = re.search(r'<table id="dead">.*?</table>', html, re.S).group(0)
        assert "<td>欢迎语</td>" in dead  # the kind in words
        task = re.search(r'<tr data-task="\d+">.*?</tr>', html, re.S).group(0)
        assert all(w in task for w in ("<td>群发任务</td>", '/sops/dormant_winback"', "第 2 步",
                                       "lina", '<td class="n">3</td>', '<td class="n">2</td>',
                                       "<td>导购已确认</td>")), task
        csrf = csrf_in(html)
        status, _, _ = await console.post(f"/console/acme/outbox/{other.id}/retry",
                                          {"_csrf": csrf})
        assert status == 404  # another tenant's row
        status, _, _ = await console.post(f"/console/acme/outbox/{row.id}/retry",
                                          {"_csrf": csrf})
        assert status == 303
        async with db.read() as s:
            again = await s.get(OutboxItem, row.id)
            assert again is not None and (again.status, again.attempts) == ("failed", 0)
        _, html, _ = await console.get("/console/acme/outbox?done=1")
        pending = re.search(r'<table id="pending">.*?</table>', html, re.S).group(0)
        assert "welcome:dead-one" in pending and "<td>失败待重试</td>" in pending
    finally:
        await console.close()




async def test_content_page_shows_messages_as_a_customer_sees_them(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    library = library_copy(tmp_path, {"messages/console_card.toml": CARD_MESSAGE})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    try:
        status, html, _ = await Console(stack).get(
            "/console/acme/content", headers={"Authorization": "Bearer acme-admin-token"})
        assert status == 200
        card = re.search(r'<article class="bubble" id="msg-console_card".*?</article>', html,
                         re.S)
        assert card is not None
        shown = card.group(0)
        assert "新品到店，欢迎来看看" in shown
        assert "修护精华液 30ml" in shown and "SKU-SERUM-02" in shown and "¥599.00" in shown
        assert "张晓雨，欢迎来到双11专场" in html and "{{" not in html  # the sample name
        assert "双11主会场 | 限时满减" in html  # a link card
        assert 'id="drops"' in html and "double12_warmup" in html
        drops = re.search(r'<table id="drops">.*?</table>', html, re.S).group(0)
        when = datetime(2026, 12, 10, 2, tzinfo=UTC).astimezone(stack.tenant().tz)
        assert f"<td>{when:%Y-%m-%d %H:%M}</td><td>群发任务</td>" in drops  # its at, in words
        weekly = ("<td>每周五 10:00（租户时区，cron <code>0 10 * * 5</code>）</td>"
                  "<td>朋友圈任务</td>")
        assert weekly in drops, drops  # the weekly cron, in words
        assert "SKU-LIPSTICK-01" in html and "¥299.00" in html  # the catalog
        rules = re.search(r'<table id="auto-tags">.*?</table>', html, re.S).group(0)
        rows = re.findall(r'<tr data-rule="(on_open|on_message)">(.*?)</tr>', rules, re.S)
        assert [source for source, _ in rows] == ["on_open", "on_open", "on_message"]
        assert "品类为 beauty" in rows[0][1] and "美妆兴趣" in rows[0][1]
        assert "SKU 为 SKU-SERUM-02" in rows[1][1] and "护肤兴趣" in rows[1][1]
        assert "包含关键词 防晒, 美白, SPF" in rows[2][1] and "防晒意向" in rows[2][1]
        assert 'data-auto-tags="off"' not in html  # on for acme
        table = re.search(r'<table id="profile-fields">.*?</table>', html, re.S).group(0)
        fields = re.findall(r'<tr data-field="(\w+)"><th scope="row"><code>\w+</code></th>'
                            r'<td>(.*?)</td><td>(.*?)</td>\s*<td>(.*?)</td><td>(.*?)</td></tr>',
                            table, re.S)
        assert fields == [  # profile_fields.toml's five, in the file's order, kinds in words
            ("skin", "肤质", "单选", "干性, 油性, 混合, 敏感", "是"),
            ("size", "尺码", "单选", "XS, S, M, L, XL", "是"),
            ("member_card", "会员卡号", "文本", "最多 32 字", "否（仅总部）"),
            ("categories", "喜欢的品类", "多选", "口红, 精华, 面霜, 防晒, 围巾", "是"),
            ("last_visit", "上次到店", "日期", "—", "是")], table
        assert 'id="profile-field-errors"' not in html
        status, english, _ = await Console(stack).get(
            "/console/acme/content?lang=en", headers={"Authorization": "Bearer acme-admin-token"})
        assert status == 200 and "Customer profile fields" in english
        assert "<td>single choice</td>" in english and "at most 32 characters" in english
        for page in (html, english):  # the brand's messages in Chinese, whatever the chrome's
            shown = _bubbles(page)
            assert "张晓雨，欢迎加入！我是静安嘉里中心店的导购李娜" in shown["sop_new_welcome"]
            assert "今天是 3 位客户的生日（张晓雨、王芳、陈静）" in shown["sop_birthday_greeting"]
            assert "「生日关怀」有一条发往 3 个客户群" in shown["sop_notify_group_owner"]
            assert "沉睡客户回访：3 位客户（张晓雨、王芳、陈静）" in shown["sop_winback_call"]
            assert "Zhang Xiaoyu" not in page and "（）" not in page and "「」" not in page
    finally:
        await stack.http.close()


def _bubbles(html: str) -> dict[str, str]:
    """The content page's message previews, by message id."""
    return {found.group(1): found.group(0) for found in
            re.finditer(r'<article class="bubble" id="msg-(\w+)".*?</article>', html, re.S)}


async def test_an_id_that_commits_late_is_counted_once_by_job_and_backfill(
        stack: Stack) -> None:
    """PostgreSQL may commit a transaction after one that took a later id: the skipped id is
    a gap, looked up again on every run, counted when it appears and never twice."""
    stats = stack.runtime.services.stats
    assert stats is not None
    db = stack.runtime.services.db
    now = datetime.now(UTC)

    async def add(row_id: int, customer: str) -> None:
        async with db.write() as s:
            s.add(FollowEvent(id=row_id, tenant="acme", guide="lina", external_userid=customer,
                              action="added", at=now))

    await add(1000, "wmLATE2")
    assert await upkeep(stack) == 1
    await add(990, "wmLATE1")  # an earlier id, committed after 1000 was read
    assert await upkeep(stack) == 1
    assert await upkeep(stack) == 0
    today = now.astimezone(stack.tenant().tz).date()
    body = await stats.overview("acme", today, today)
    assert (body["totals"]["adds_other"], body["totals"]["new_customers_other"]) == (2, 2)
    await stats.backfill("acme")
    assert await stats.overview("acme", today, today) == body


def _alert(html: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert found, html
    return found.group(1).strip()


async def test_refusals_are_worded_in_the_pages_language(stack: Stack) -> None:
    """What the services refuse reaches HQ as a sentence in the console's language (the
    admin API keeps its English detail), and the refused form changed nothing."""
    await seed(stack)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        now = datetime.now(stack.tenant().tz)
        period, next_year = now.strftime("%Y-%m"), f"{now.year + 1}-01"
        _, html, _ = await console.get(f"/console/acme/commissions?period={period}")
        csrf = csrf_in(html)
        adjust = {"guide": "lina", "amount": "2", "reason": "r", "operator": "hq",
                  "_csrf": csrf}
        settle = {"period": next_year, "operator": "hq", "confirm": "yes", "_csrf": csrf}
        gets = [
            ("/console/acme/?from=2026-12-06&to=2026-11-01", 400,
             "开始日期不能晚于结束日期。", "The start date must not be after the end date."),
            ("/console/acme/?from=2025-01-01&to=2026-12-01", 400,
             "日期范围最多 366 天，请缩短范围。",
             "A range covers at most 366 days; choose a shorter one."),
            ("/console/acme/commissions?period=2026-13", 400,
             "结算周期须为 YYYY-MM 格式，例如 2026-11（收到「2026-13」）。",
             "A period is written YYYY-MM, like 2026-11 (got “2026-13”)."),
            ("/console/acme/orders/NOPE-1", 404, "本品牌没有订单 NOPE-1。",
             "This brand has no order NOPE-1."),
            ("/console/acme/nope", 404, "控制台没有这个页面（/console/acme/nope）。",
             "The console has no page /console/acme/nope."),
            ("/console/acme/sops?sop=new_customer_nurture&added_at=yesterday", 400,
             "「yesterday」不是有效的时间，请写成 2026-11-20T15:00 的格式。",
             "“yesterday” is not a time; write it like 2026-11-20T15:00."),
        ]
        posts = [
            ("/console/acme/commissions/adjustments", {**adjust, "amount": "0"}, 400,
             "调整金额不能为 0，且不超过 ±1,000,000 元。未记入任何调整。",
             "An adjustment is not zero and at most ±¥1,000,000. Nothing was recorded."),
            ("/console/acme/commissions/adjustments", {**adjust, "guide": "nobody"}, 404,
             "本品牌没有导购 nobody。", "This brand has no guide nobody."),
            ("/console/acme/commissions/adjustments", {**adjust, "reason": " "}, 400,
             "请填写原因和操作人。未记入任何调整。",
             "Give a reason and an operator. Nothing was recorded."),
            ("/console/acme/commissions/settle", settle, 400,
             f"{next_year} 尚未开始，不能结算。",
             f"{next_year} has not started yet; it cannot be settled."),
            ("/console/acme/materials/new", {"title": "空", "_csrf": csrf}, 400,
             "素材至少要有文案、图片、视频或链接之一。",
             "A material needs text, pictures, a video or a link."),
        ]
        for lang, index in (("", 2), ("lang=en", 3)):
            for path, status, *said in gets:
                joined = f"{path}{'&' if '?' in path else '?'}{lang}" if lang else path
                got, html, _ = await console.get(joined)
                assert (got, _alert(html)) == (status, said[index - 2]), path
            if lang:
                await console.get("/console/acme/?lang=en")  # the cookie keeps it for POSTs
            for path, form, status, *said in posts:
                got, html, _ = await console.post(path, form)
                assert (got, _alert(html)) == (status, said[index - 2]), (path, form)
        _, body = await stack.admin(f"/commissions/statements?period={period}")
        assert all(r["adjustment_fen"] == 0 for r in body["statements"])  # nothing recorded
        assert body["settled"] is False
        status, body = await stack.admin("/orders/NOPE-1")
        assert status == 404 and "order_no: order NOPE-1 not found" in str(body)  # the API's

        # settled twice: the second is refused in words, the period stays settled once
        settle = {**settle, "period": period}
        assert (await console.post("/console/acme/commissions/settle", settle))[0] == 303
        status, html, _ = await console.post("/console/acme/commissions/settle", settle)
        assert (status, _alert(html)) == (
            400, f"{period} is already settled and locked: no settling again, no adjustments.")
    finally:
        await console.close()


# the pages of a range of days (console.day_range) and, for those with one, their CSV's name
RANGE_PAGES = {"/": None, "/guides": "guides", "/stores": "stores", "/orders": "orders",
               "/deletions": "guide-deletions", "/groups": None, "/handoffs": None,
               "/watch": None, "/channels/{code}": None, "/group-codes": None}


async def test_range_pages_refuse_a_bad_range_in_words_and_name_their_csv(
        stack: Stack) -> None:
    """Every range page refuses a range that is no dates, ends before it starts or is longer
    than a year, worded, its CSV too (a refusal page, never a download); a good range's CSV
    is named kind-tenant-from-to.csv and starts with a BOM."""
    status, code = await stack.admin("/channels", method="POST",
                                     json={"guide": "lina", "store": "S01", "campaign": "c1"})
    assert status == 201, code
    console = Console(stack)
    bad = {"from=2026-11-3&to=2026-11-04": "开始日期和结束日期须为 YYYY-MM-DD 格式的日期。",
           "from=2026-11-02&to=nope": "开始日期和结束日期须为 YYYY-MM-DD 格式的日期。",
           "from=2026-11-05&to=2026-11-04": "开始日期不能晚于结束日期。",
           "from=2025-11-03&to=2026-11-04": "日期范围最多 366 天，请缩短范围。"}
    try:
        await console.login("acme", "acme-admin-token")
        for template, kind in RANGE_PAGES.items():
            path = "/console/acme" + template.format(code=code["id"])
            for query, said in bad.items():
                for asked in ((query, f"{query}&format=csv") if kind else (query,)):
                    got, html, resp = await console.get(f"{path}?{asked}")
                    assert resp.content_type == "text/html", (path, asked)
                    assert (got, _alert(html)) == (400, said), (path, asked)
            got, html, _ = await console.get(f"{path}?from=2025-11-04&to=2026-11-04")
            assert got == 200, path  # 366 days, the most a range may cover
            if kind:
                got, text, resp = await console.get(
                    f"{path}?from=2026-11-01&to=2026-11-04&format=csv")
                assert got == 200 and resp.content_type == "text/csv", path
                assert resp.headers["Content-Disposition"] == (
                    f'attachment; filename="{kind}-acme-2026-11-01-2026-11-04.csv"')
                assert text.startswith("\ufeff"), path
    finally:
        await console.close()
