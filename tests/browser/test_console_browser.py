"""The console in headless Chromium against a seeded scenario: keyboard-only sign-in, every
page with the scenario's figures, labels on every input, charts drawn, 375 px without
horizontal overflow; screenshots go to tests/artifacts/."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import ARTIFACTS
from tests.support.console import seed, upkeep
from tests.support.stack import Stack

PAGES = ("", "guides", "stores", "customers", "orders", "orders/CO-1", "commissions", "sops",
         "sops/dormant_winback", "sops/group_nurture", "content", "outbox", "transfers",
         "groups", "channels", "channels/1", "drops/double12_warmup", "targets", "handoffs",
         "watch", "deletions", "segments", "segments/new", "tags", "group-codes",
         "group-codes/1", "audit")

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden')
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id)"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


async def _group_code(stack: Stack) -> None:
    """群活码 1 (for its page): a code for a live group of acme's."""
    made = await stack.sandbox.create_group("acme", "lina", name="门店会员群", members=[])
    await stack.runtime.drain()
    status, code = await stack.admin("/group-codes", method="POST",
                                     json={"chat_ids": [made["chat_id"]], "campaign": "柜台"})
    assert status == 201 and code["id"] == 1, code


def _shot(name: str, db: str) -> str:
    return str(ARTIFACTS / f"console-{name or 'overview'}-{db}.png".replace("/", "-"))


async def _sign_in_by_keyboard(page: Any, base: str) -> None:
    await page.goto(f"{base}/console/login")
    # The tenant field has focus on arrival (autofocus, applied when the browser next renders
    # the page: wait for it, up to 5 s); Tab to the token, Enter submits.
    await page.wait_for_function("() => document.activeElement.id === 'tenant'", timeout=5000)
    await page.keyboard.type("acme")
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.id") == "token"
    await page.keyboard.type("acme-admin-token")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert page.url == f"{base}/console/acme/"


async def test_sign_in_by_keyboard_and_every_page_shows_the_scenario(
        stack: Stack, browser: Any, db_url: str) -> None:
    seeded = await seed(stack)
    await upkeep(stack)
    await _group_code(stack)
    db = "pg" if db_url.startswith("postgresql") else "sqlite"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    failed: list[str] = []  # every request the pages make (stylesheets, scripts, the icon)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
            else None)
    await _sign_in_by_keyboard(page, stack.bot_url)

    async def fig(name: str) -> str:
        return str(await page.locator(f'[data-figure="{name}"]').inner_text()).strip()

    assert await fig("gmv") == seeded.gmv
    assert await fig("gmv_new") == seeded.gmv_new
    assert await fig("adds_code") == str(seeded.adds_code)
    assert await fig("deletions") == str(seeded.deletions)
    assert await fig("commission") == seeded.commission
    await page.locator('[data-chart="growth"] svg').first.wait_for()
    await page.locator('[data-chart="funnel"] svg').first.wait_for()
    definition = await page.locator("abbr.def").first.get_attribute("title")
    assert definition and "add_external_contact" in definition
    await page.screenshot(path=_shot("", db), full_page=True)

    titles = {"": await page.title()}
    for path in PAGES[1:]:
        response = await page.goto(f"{stack.bot_url}/console/acme/{path}")
        assert response is not None and response.status == 200, path
        assert await page.evaluate(UNLABELLED) == [], path
        await page.wait_for_load_state("load")  # the icon and stylesheet requests are done
        await page.screenshot(path=_shot(path, db), full_page=True)
        titles[path] = await page.title()
        heading = " ".join(str(await page.locator("h1").inner_text()).split())
        assert titles[path] == f"{heading} · 导购助手", path
    # Each page says what it is in the tab and to screen readers (its heading, then the app).
    assert len(set(titles.values())) == len(titles), titles
    assert all(t.endswith(" · 导购助手") for t in titles.values()), titles
    assert titles[""] == "数据中心 · 导购助手" and titles["orders/CO-1"] == "订单 CO-1 · 导购助手"
    assert failed == []
    await page.goto(f"{stack.bot_url}/console/acme/guides")
    first = page.locator("#leaderboard tbody tr").first
    assert await first.get_attribute("data-guide") == "lina"
    assert seeded.lina_gmv in str(await first.inner_text())
    await page.goto(f"{stack.bot_url}/console/acme/orders/CO-1")
    assert await fig("amount") == "¥199.00"
    await context.close()


async def test_sop_page_enrolls_a_guides_customers_and_switches_the_sop_off_and_on(
        stack: Stack, browser: Any, db_url: str) -> None:
    await seed(stack)  # wangfang has one customer (韩梅梅)
    db = "pg" if db_url.startswith("postgresql") else "sqlite"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await _sign_in_by_keyboard(page, stack.bot_url)
    await page.goto(f"{stack.bot_url}/console/acme/sops/dormant_winback")
    assert await page.locator('#conversion tbody tr').count() == 3  # one row per step
    await page.get_by_label("导购 userid").fill("wangfang")
    async with page.expect_navigation():
        await page.locator("#enroll-submit").click()
    assert page.url.endswith("/sops/dormant_winback?enrolled=1")
    assert "已加入客户数：1" in str(await page.locator("#enrolled").inner_text())
    assert "进行中 1" in str(await page.locator("#state").inner_text())
    await page.screenshot(path=_shot("sop", db), full_page=True)
    async with page.expect_navigation():
        await page.locator("#switch").click()
    assert await page.locator("#state").get_attribute("data-enabled") == "0"
    assert "已由总部停用" in str(await page.locator("#state").inner_text())
    async with page.expect_navigation():
        await page.locator("#switch").click()
    assert await page.locator("#state").get_attribute("data-enabled") == "1"
    await context.close()


async def test_every_page_fits_375_px_and_the_login_form_is_labelled(
        stack: Stack, browser: Any, db_url: str) -> None:
    await seed(stack)
    await upkeep(stack)
    await _group_code(stack)
    db = "pg" if db_url.startswith("postgresql") else "sqlite"
    context = await browser.new_context(viewport={"width": 375, "height": 812})
    page = await context.new_page()
    await page.goto(f"{stack.bot_url}/console/login")
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(OVERFLOW) <= 0
    await _sign_in_by_keyboard(page, stack.bot_url)
    for path in PAGES:
        await page.goto(f"{stack.bot_url}/console/acme/{path}")
        assert await page.evaluate(OVERFLOW) <= 0, path
    await page.goto(f"{stack.bot_url}/console/acme/")
    await page.screenshot(path=_shot("375", db), full_page=True)
    await context.close()


async def test_a_segment_is_tagged_from_its_page_and_the_runs_fit_375_px(
        stack: Stack, browser: Any, db_url: str) -> None:
    await seed(stack)
    await stack.runtime.services.tags.sync("acme")
    status, segment = await stack.admin("/segments", method="POST",
                                        json={"name": "全部", "conditions": {}})
    assert status == 201, segment
    db = "pg" if db_url.startswith("postgresql") else "sqlite"
    context = await browser.new_context(viewport={"width": 375, "height": 812})
    page = await context.new_page()
    await _sign_in_by_keyboard(page, stack.bot_url)
    await page.goto(f"{stack.bot_url}/console/acme/segments/{segment['id']}")
    await page.get_by_label("标签", exact=True).select_option(label="新客")
    async with page.expect_navigation():
        await page.locator("#segment-tag-go").click()
    assert "批量打标签已开始（标签「新客」" in str(await page.locator(".notice").inner_text())
    await stack.runtime.drain()
    await page.reload()
    assert await page.locator("#tag-runs tbody tr").count() == 1
    assert await page.locator("#tag-runs tbody tr").get_attribute("data-state") == "staged"
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(OVERFLOW) <= 0
    await page.screenshot(path=_shot(f"segments/{segment['id']}", db), full_page=True)
    await context.close()
