"""移动工作台 in headless Chromium at 375 px: WeCom's OAuth (the browser is sent to WeCom and
back with a sandbox code, WeCom's leg played here as the sidebar's browser test plays it), a
guide's month and to-dos, a follow-up's customer opened, then a store manager's store with its
guides ranked; nothing wider than the phone; screenshots go to tests/artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.scenario.test_mobile_workbench import _month, workbench_stack
from tests.support.sidebar import play_wecom_oauth
from tests.support.stack import Stack


@pytest.fixture
async def stack(aiohttp_server, tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    s = await workbench_stack(aiohttp_server, tmp_path, sqlite_url)
    yield s
    await s.http.close()


async def _open_as(stack: Stack, page: Any, member: str) -> None:
    """Open the workbench as `member`: guidebot sends the browser to WeCom's authorize URL
    and WeCom sends it back with a code (Playwright routes only the first request of a
    redirect chain, so WeCom's leg is played here)."""
    await page.route(f"{stack.bot_url}/m/acme",
                     lambda route: play_wecom_oauth(stack, route, member, "/m/acme"))
    await page.goto(f"{stack.bot_url}/m/acme")


async def _fits(page: Any) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, width


async def test_the_workbench_for_a_guide_and_a_manager(stack: Stack, browser: Any) -> None:
    await _month(stack)
    context = await browser.new_context(viewport={"width": 375, "height": 812})
    page = await context.new_page()
    await _open_as(stack, page, "lina")
    await page.locator("#wb-mine").wait_for()
    assert await page.locator("#wb-adds").inner_text() == "3"
    assert await page.locator("#wb-gmv").inner_text() == "¥26.05"
    assert "1 个" in await page.locator("#wb-tasks").inner_text()
    assert await page.locator("#wb-follow-up-list li").count() == 2
    await _fits(page)
    await page.screenshot(path=str(ARTIFACTS / "workbench-guide.png"), full_page=True)

    await page.get_by_role("link", name="张晓雨").click()
    await page.locator("#wb-notes li", has_text="到店试色").wait_for()
    await _fits(page)
    await page.screenshot(path=str(ARTIFACTS / "workbench-customer.png"), full_page=True)
    await context.close()

    context = await browser.new_context(viewport={"width": 375, "height": 812})
    page = await context.new_page()
    await _open_as(stack, page, "duo")  # manages S01 (stores.toml) and S02 (WeCom)
    await page.locator("#wb-store").wait_for()
    assert await page.locator("#wb-guides tbody tr").count() == 2
    first = await page.locator("#wb-guides tbody tr").first.inner_text()
    assert "李娜" in first and "¥26.05" in first
    await _fits(page)
    await page.screenshot(path=str(ARTIFACTS / "workbench-manager.png"), full_page=True)
    await page.get_by_role("link", name="徐汇日月光店").click()
    await page.locator("#h-store", has_text="徐汇日月光店").wait_for()
    await page.get_by_role("link", name="上月").click()
    await page.locator("#h-store", has_text="（上月）").wait_for()
    assert "徐汇日月光店" in await page.locator("#h-store").inner_text()
    await context.close()
