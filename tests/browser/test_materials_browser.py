"""The console's material review queue in headless Chromium: a guide's contributions from the
app chat appear oldest first with their pictures, flags and the contributor's history; a
reviewer approves one with a grade and rejects one with a reason by keyboard-free clicks, and
the guide hears both outcomes; labelled inputs; no overflow at 375 px."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_console_browser import OVERFLOW, UNLABELLED, _sign_in_by_keyboard
from tests.scenario.test_materials_chat import PNG
from tests.support.materials import app_message, told
from tests.support.stack import Stack


async def test_review_queue_approves_and_rejects(stack: Stack, browser: Any,
                                                 db_url: str) -> None:
    db = "pg" if db_url.startswith("postgresql") else "sqlite"
    await app_message(stack, "lina", picture=PNG)
    await app_message(stack, "lina", text="燕麦围巾通勤搭配")
    await app_message(stack, "zhaolei", text="投稿 全网最低价围巾")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await _sign_in_by_keyboard(page, stack.bot_url)
    await page.goto(f"{stack.bot_url}/console/acme/materials")
    rows = page.locator("#materials tbody tr")
    assert await rows.count() == 2
    first, second = rows.nth(0), rows.nth(1)
    assert "燕麦围巾通勤搭配" in await first.inner_text()  # oldest first
    assert await first.locator("img").count() == 1
    assert await first.locator("img").evaluate("img => img.naturalWidth") == 2  # served
    assert "全网最低" in await second.locator(".flags").inner_text()
    assert await page.evaluate(UNLABELLED) == []
    await page.screenshot(path=str(ARTIFACTS / f"console-materials-{db}.png"), full_page=True)

    lina_id = await first.get_attribute("data-material")
    await first.locator("input[type=checkbox]").check()
    await page.select_option("#action", "approve")
    await page.select_option("#grade", "A")
    async with page.expect_navigation():
        await page.click("#review button[type=submit]")
    assert "1" in await page.locator(".notice").inner_text()
    assert await page.locator("#materials tbody tr").count() == 1

    await page.locator("#materials tbody tr input[type=checkbox]").check()
    await page.select_option("#action", "reject")
    await page.fill("#reason", "含有夸大用语")
    async with page.expect_navigation():
        await page.click("#review button[type=submit]")
    assert "没有素材" in await page.locator("main").inner_text()

    await page.goto(f"{stack.bot_url}/console/acme/materials?status=approved")
    approved = page.locator(f'#materials tbody tr[data-material="{lina_id}"]')
    assert "A" in await approved.inner_text()
    assert await approved.locator('[data-figure="uses"]').inner_text() == "0"
    points = page.locator('#contributors tr[data-guide="lina"] [data-figure="points"]')
    assert await points.inner_text() == "0"  # nobody used it yet
    assert "评级 A" in told(stack, "lina")[-1]
    assert told(stack, "zhaolei")[-1].endswith("含有夸大用语")

    small = await browser.new_context(viewport={"width": 375, "height": 812})
    narrow = await small.new_page()
    await _sign_in_by_keyboard(narrow, stack.bot_url)
    for lang in ("zh-CN", "en"):  # the English review options are the longer
        await narrow.goto(f"{stack.bot_url}/console/acme/materials?status=approved&lang={lang}")
        assert await narrow.evaluate(OVERFLOW) <= 0, lang
        assert await narrow.evaluate("document.documentElement.scrollWidth") <= 375, lang
    await small.close()
    await context.close()


async def test_hq_creates_a_material_with_pictures_in_the_console(
        stack: Stack, browser: Any, tmp_path: Any) -> None:
    picture, other = tmp_path / "coat.png", tmp_path / "notes.gif"
    picture.write_bytes(PNG)
    other.write_bytes(b"GIF89a" + bytes(64))
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await _sign_in_by_keyboard(page, stack.bot_url)
    await page.goto(f"{stack.bot_url}/console/acme/materials")
    assert await page.evaluate(UNLABELLED) == []
    await page.fill("#new-title", "羊绒大衣上新")
    await page.fill("#new-text", "双十二羊绒大衣到店，通勤百搭。")
    await page.set_input_files("#new-pictures", [str(picture), str(other)])
    await page.fill("#new-skus", "SKU-SCARF-03, SKU-DRESS-04")
    await page.fill("#new-occasions", "通勤、上新")
    await page.select_option("#new-grade", "S")
    async with page.expect_navigation():
        await page.click("#new-material button[type=submit]")
    assert "status=approved" in page.url
    assert "1" in await page.locator(".notice").inner_text()  # one picture refused
    status, body = await stack.admin("/materials/search?keyword=羊绒大衣")
    [made] = body["materials"]
    assert (made["source"], made["grade"], made["status"]) == ("hq", "S", "approved")
    assert made["skus"] == ["SKU-SCARF-03", "SKU-DRESS-04"]
    assert made["occasions"] == ["通勤", "上新"] and len(made["pictures"]) == 1
    row = page.locator(f'#materials tbody tr[data-material="{made["id"]}"]')
    assert await row.locator("img").evaluate("img => img.naturalWidth") == 2
    await context.close()
