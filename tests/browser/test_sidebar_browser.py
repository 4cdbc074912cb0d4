"""The sidebar in headless Chromium at 375 px: WeCom's OAuth (the browser is sent to WeCom
and back with a sandbox code), ww.register against a stub of the WeCom client whose
agentConfig check is the sandbox's (the signature must verify with the ticket it issued),
the customer's tags shown, a tag added, and a product card sent with a tracked page."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.scenario.test_materials_chat import PNG
from tests.support.commerce import paid, post_order, signed_visit
from tests.support.library_edits import edit, reload
from tests.support.sidebar import play_wecom_oauth
from tests.support.stack import ROOT, Stack, library_copy, start_stack

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "tests" / "artifacts"

# The WeCom client stand-in: ww.register asks the page's server for the agentConfig
# signature and has the sandbox check it, as the client checks it with WeCom; the customer
# is known only after that check passed; sendChatMessage records what it was given.
STUB = """
window.__sent = [];
var ww = (function () {
  var ready = null;
  return {
    register: function (options) {
      var url = location.href;
      ready = Promise.resolve(options.getAgentConfigSignature(url)).then(function (s) {
        return window.verifyAgentConfig(url, String(s.timestamp), s.nonceStr, s.signature);
      });
    },
    getCurExternalContact: function () {
      return ready.then(function (ok) {
        if (!ok) { throw { errMsg: "getCurExternalContact:fail no permission" }; }
        return { errMsg: "getCurExternalContact:ok", userId: %(customer)s };
      });
    },
    sendChatMessage: function (message) {
      return ready.then(function () {
        window.__sent.push(message);
        return { errMsg: "sendChatMessage:ok" };
      });
    }
  };
})();
"""


def _playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser test: the playwright package is not installed")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("browser test: Debian's chromium is not installed (apt-get install chromium)")
    return async_playwright


@pytest.fixture
async def sqlite_stack(aiohttp_server, tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    s = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    yield s
    await s.http.close()


async def _seed(stack: Stack) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="陈思")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    services = stack.runtime.services
    await services.sync_tags()
    outcome = await services.tags.edit("acme", guide="lina", external_userid=customer,
                                                add=["新客", "门店扫码"], remove=[])
    assert outcome.status == "done"
    item = {"sku": "SKU-LIPSTICK-01", "category": "beauty", "quantity": 1, "amount_fen": 29900}
    status, body = await post_order(stack, paid("SB-1", customer=customer, items=[item]))
    assert status < 300, body
    status, link = await stack.admin("/links", method="POST", json={
        "guide": "lina", "sku": "SKU-SCARF-03", "customer": customer})
    assert status == 201, link
    async with stack.http.get(f"{stack.bot_url}/t/{link['token']}",
                              params=signed_visit(stack, link["token"],
                                                  external_userid=customer)) as resp:
        assert resp.status == 204
    await stack.sandbox.create_group("acme", "lina", name="静安会员群", members=[customer])
    await stack.runtime.drain()
    services.sidebar.clock = lambda: datetime(2031, 2, 20, 4, tzinfo=UTC)  # 9 days before
    services.sop.clock = services.sidebar.clock  # the birthday SOP's catch-up: the same day
    status, body = await stack.admin(f"/customers/{customer}/birthday", method="PUT",
                                     json={"birthday": "1992-03-01"})
    assert status == 200, body
    return customer


async def _open_as(stack: Stack, page: Any, guide: str, customer: str) -> None:
    """Open the sidebar in `page` as `guide`, in a chat with `customer` (the stubbed client's
    getCurExternalContact), WeCom's OAuth leg and agentConfig check played by the sandbox."""
    jsapi = stack.sandbox.tenant("acme").jsapi

    async def stub_client(route: Any) -> None:
        await route.fulfill(status=200, content_type="application/javascript",
                            body=STUB % {"customer": json.dumps(customer)})

    def verify(url: str, timestamp: str, nonce: str, signature: str) -> bool:
        return jsapi.verify(url=url, timestamp=timestamp, nonce=nonce, signature=signature,
                            now=stack.sandbox.now())

    await page.route(f"{stack.bot_url}/sidebar/acme",
                     lambda route: play_wecom_oauth(stack, route, guide, "/sidebar/acme"))
    await page.route("**/sidebar/_static/vendor/wecom.global.prod.js", stub_client)
    await page.expose_function("verifyAgentConfig", verify)
    await page.goto(f"{stack.bot_url}/sidebar/acme")


async def test_the_sidebar_in_a_phone_sized_browser(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    async_playwright = _playwright()
    customer = await _seed(stack)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 812})
            await _open_as(stack, page, "lina", customer)
            await page.locator("#sb-profile").wait_for(state="visible")
            assert await page.locator("#sb-name").inner_text() == "陈思"
            chips = page.locator("#sb-tags li span")
            assert sorted(await chips.all_inner_texts()) == sorted(["新客", "门店扫码"])
            orders = await page.locator("#sb-orders li").all_inner_texts()
            assert len(orders) == 1 and "¥299.00" in orders[0]
            assert int(await page.locator("#sb-score").inner_text()) > 0  # the visit
            groups = await page.locator("#sb-groups li").all_inner_texts()
            assert len(groups) == 1 and "静安会员群" in groups[0], groups
            timeline = await page.locator("#sb-timeline li").all_inner_texts()
            assert any("加入群「静安会员群」" in line for line in timeline), timeline
            assert any("打开了「羊绒围巾 燕麦色」卡片" in line for line in timeline), timeline
            assert any("处下单 ¥299.00" in line for line in timeline), timeline
            assert any("添加了" in line for line in timeline), timeline
            assert all("{" not in line for line in timeline), timeline
            assert await page.locator("#sb-opted-out").is_hidden()
            assert await page.locator("#sb-birthday").inner_text() == "生日：03-01（9 天后）"
            await page.screenshot(path=str(ARTIFACTS / "sidebar-customer.png"), full_page=True)

            await page.select_option("#sb-tag-add", "复购客")
            await page.get_by_role("button", name="添加", exact=True).click()
            await page.locator("#sb-tags li span", has_text="复购客").wait_for()
            [mark] = [c for c in stack.calls("externalcontact/mark_tag")
                      if c["body"]["add_tag"] and len(c["body"]["add_tag"]) == 1]
            assert mark["body"]["userid"] == "lina"
            # WeCom refuses the next tag edit (the customer deleted the guide): the guide
            # reads why in Chinese, worded from the refusal's code, and the chip stays
            async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
                    "tenant": "acme", "path": "externalcontact/mark_tag", "errcode": 84061,
                    "times": 1}) as resp:
                assert resp.status == 200
            await page.get_by_role("button", name="移除标签 复购客").click()
            worded = "标签未更新：企业微信显示你与这位客户已不是好友。"
            await page.locator("#sb-status", has_text=worded).wait_for()
            assert "复购客" in await page.locator("#sb-tags li span").all_inner_texts()

            # 跟进记录: a note with a follow-up day, listed at once; then the guide's remark
            await page.get_by_label("写跟进记录（最多 500 字）").fill("下周三到店试色")
            await page.get_by_label("下次跟进日期（可不填）").fill("2027-01-08")
            await page.get_by_role("button", name="保存记录").click()
            await page.locator("#sb-status", has_text="跟进记录已保存").wait_for()
            await page.locator("#sb-notes li", has_text="下周三到店试色").wait_for()
            assert "2027-01-08" in await page.locator("#sb-notes li").first.inner_text()
            await page.get_by_label("写跟进记录（最多 500 字）").fill("   ")  # blank: refused
            await page.get_by_role("button", name="保存记录").click()
            refused = page.locator("#sb-status", has_text="跟进记录未保存：请填写跟进内容。")
            await refused.wait_for()  # worded in Chinese from the refusal's code
            await page.get_by_label("我的备注").fill("试色VIP")
            await page.get_by_role("button", name="保存备注").click()
            await page.locator("#sb-status", has_text="备注已保存").wait_for()
            [remark] = stack.calls("externalcontact/remark")
            assert remark["body"]["remark"] == "试色VIP" and remark["body"]["userid"] == "lina"

            await page.get_by_role("button", name="发送卡片 修护精华液 30ml").click()
            await page.locator("#sb-status", has_text="已发送").wait_for()
            [sent] = await page.evaluate("window.__sent")

            # the materials tab: HQ's approved material sent in one tap, piece by piece
            await page.get_by_role("button", name="发送素材 燕麦色围巾的三种系法").click()
            await page.locator("#sb-status", has_text="素材已发送").wait_for()
            pieces = (await page.evaluate("window.__sent"))[1:]

            # the upload form: a text and a picture, a pending submission for review
            picture = ARTIFACTS / "sidebar-upload.png"
            picture.write_bytes(PNG)
            await page.fill("#sb-contribute-text", "顾客试穿照片")
            await page.set_input_files("#sb-contribute-pictures", str(picture))
            await page.get_by_role("button", name="提交审核").click()
            await page.locator("#sb-status", has_text="投稿已提交").wait_for()
            await page.screenshot(path=str(ARTIFACTS / "sidebar.png"), full_page=True)

            # the customer opts out in 微信客服: the sidebar warns the guide
            async with stack.runtime.services.db.write() as s:
                from guidebot.db.repo import opt_outs
                from guidebot.db.types import utcnow

                await opt_outs.record(s, tenant="acme", external_userid=customer,
                                      msgid="optout-1", at=utcnow())
            await page.reload()
            await page.locator("#sb-opted-out").wait_for(state="visible")
            assert "退订" in await page.locator("#sb-opted-out").inner_text()
        finally:
            await browser.close()
    assert sent["msgtype"] == "miniprogram"
    program = sent["miniprogram"]
    path, _, token = program["page"].partition("&t=")
    assert path == "pages/goods/detail.html?id=1002" and token
    async with stack.runtime.services.db.read() as s:
        from guidebot.db.repo import commerce_links

        link = await commerce_links.get_link(s, tenant="acme", token=token)
    assert link is not None and (link.guide, link.customer, link.sku) == (
        "lina", customer, "SKU-SERUM-02")
    assert len(stack.calls("ticket/get")) == 1
    assert [m["msgtype"] for m in pieces] == ["text", "image", "miniprogram"]
    assert pieces[1]["image"]["mediaid"] and "&t=" in pieces[2]["miniprogram"]["page"]
    status, queue = await stack.admin("/materials?contributor=lina")
    [mine] = queue["materials"]
    assert (mine["text"], len(mine["pictures"]), mine["status"]) == ("顾客试穿照片", 1, "pending")
    status, stats = await stack.admin("/materials/scarf_oat_styling/stats")
    assert (stats["uses"], stats["customers_reached"]) == (1, 1), stats


async def test_a_refused_customer_card_is_worded_from_its_code(sqlite_stack: Stack) -> None:
    """The page's first request, the customer card, is refused like any other: the guide reads
    the console catalog's Chinese wording of the refusal's code; a failure that carries no
    code (the network) reads the plain 加载失败."""
    stack = sqlite_stack
    async_playwright = _playwright()
    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="王芳")
    await stack.runtime.drain()
    theirs = str(added["external_userid"])  # zhaolei's customer, not lina's

    async def network_down(route: Any) -> None:
        await route.abort("internetdisconnected")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 812})
            await _open_as(stack, page, "lina", theirs)
            worded = "客户资料未加载：你没有添加这位客户，无法查看或操作。"
            await page.locator("#sb-status", has_text=worded).wait_for()
            assert await page.locator("#sb-profile").is_hidden()

            await page.route(f"**/sidebar/acme/customer/{theirs}", network_down)
            await page.reload()
            await page.locator("#sb-status", has_text="加载失败，请稍后重试。").wait_for()
            assert await page.locator("#sb-status").inner_text() == "加载失败，请稍后重试。"
            assert await page.locator("#sb-profile").is_hidden()
        finally:
            await browser.close()


@pytest.fixture
async def library_stack(aiohttp_server, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """The app on its own copy of content_library (to edit), SQLite and PostgreSQL."""
    library = library_copy(tmp_path, {})
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield s, library
    await s.http.close()


async def test_the_guide_fills_in_the_customer_profile_fields(
        library_stack: tuple[Stack, Path]) -> None:
    """客户资料 in the sidebar: an input suited to each field's kind, each labelled and reached
    by the keyboard; HQ's field read-only; the save stored as the guide's; a value HQ no
    longer offers refused in Chinese, worded from the refusal's code."""
    stack, library = library_stack
    async_playwright = _playwright()
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="陈思")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    status, body = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                     json={"values": {"member_card": "VIP-0001"}})
    assert status == 200, body

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 812})
            await _open_as(stack, page, "lina", customer)
            await page.locator("#sb-fields-card").wait_for(state="visible")
            card = page.get_by_label("会员卡号")
            assert await card.input_value() == "VIP-0001" and await card.is_disabled()
            assert "仅总部填写" in await page.locator("[data-field=member_card]").inner_text()
            await page.get_by_label("肤质").select_option("混合")
            await page.get_by_role("group", name="喜欢的品类").get_by_label("精华").check()
            await page.get_by_label("上次到店").fill("2027-01-02")
            await page.get_by_label("尺码").focus()  # the keyboard: HQ's field is skipped
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.value") == "口红"
            await page.get_by_role("button", name="保存客户资料").click()
            await page.locator("#sb-status", has_text="客户资料已保存").wait_for()
            assert "于" in await page.locator("[data-field=skin]").inner_text()
            await page.locator("#sb-fields-card").screenshot(
                path=str(ARTIFACTS / "sidebar-fields.png"))

            status, saved = await stack.admin(f"/customers/{customer}/fields")
            got = {f["id"]: (f["value"], f["set_by"]) for f in saved["fields"]}
            assert got["skin"] == ("混合", "lina") and got["categories"] == (["精华"], "lina")
            assert got["last_visit"] == ("2027-01-02", "lina") and got["size"] == (None, None)
            assert got["member_card"] == ("VIP-0001", "hq")

            last_visit = page.get_by_label("上次到店")  # half a date: refused, nothing cleared
            await last_visit.focus()
            await page.keyboard.press("Backspace")
            assert await last_visit.evaluate("e => e.validity.badInput && e.value === ''")
            await page.get_by_role("button", name="保存客户资料").click()
            await page.locator("#sb-status", has_text="「上次到店」应为日期").wait_for()
            status, kept = await stack.admin(f"/customers/{customer}/fields")
            assert {f["id"]: (f["value"], f["set_by"]) for f in kept["fields"]} == got
            await last_visit.fill("2027-01-02")

            await page.get_by_label("肤质").select_option("油性")
            edit(library / "profile_fields.toml", '"干性", "油性", "混合"', '"干性", "混合"')
            await reload(stack)  # HQ drops 油性 meanwhile: the save is refused, in Chinese
            await page.get_by_role("button", name="保存客户资料").click()
            worded = "客户资料未保存：「肤质」请从选项中选择。"
            await page.locator("#sb-status", has_text=worded).wait_for()
            status, after = await stack.admin(f"/customers/{customer}/fields")
            assert {f["id"]: (f["value"], f["set_by"]) for f in after["fields"]} == got
        finally:
            await browser.close()
