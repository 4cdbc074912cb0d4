"""Every refusal the sidebar's own requests can meet answers a `code` with its `params` (and
still the English `error` for API clients), and the page carries its Chinese wording: the
console's zh-CN `refusal.<code>` in the sb-refusals block, every placeholder in `params`."""

from __future__ import annotations

import json
import re
import string
from typing import Any

import aiohttp

from tests.scenario.test_materials_chat import GIF
from tests.support.sidebar import Guide, sign_in
from tests.support.stack import Stack


async def _customer(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _refusals(guide: Guide) -> dict[str, str]:
    async with guide.http.get(guide.base) as resp:
        html = await resp.text()
    found = re.search(r'<script type="application/json" id="sb-refusals">(.*?)</script>', html,
                      re.S)
    assert found is not None
    words: dict[str, str] = json.loads(found.group(1))
    return words


def _worded(words: dict[str, str], answer: Any) -> str:
    """The Chinese wording the page shows for a refusal, as sidebar.js's why() fills it."""
    assert isinstance(answer["error"], str) and answer["error"], answer  # kept for clients
    wording = words.get(f"refusal.{answer['code']}")
    assert wording, answer
    fields = {f for _, f, _, _ in string.Formatter().parse(wording) if f}
    assert fields <= set(answer["params"]), (answer, wording)
    return wording.format(**answer["params"])


async def _raw(guide: Guide, path: str, data: bytes | aiohttp.FormData, *,
               content_type: str | None = None) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": guide.csrf}
    if content_type:
        headers["Content-Type"] = content_type
    async with guide.http.post(f"{guide.base}{path}", data=data, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def _form(name: str, value: str) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field(name, value)
    return form


async def _fault(stack: Stack, path: str, errcode: int) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": errcode, "times": 1}) as resp:
        assert resp.status == 200


async def test_tag_card_and_request_refusals_are_coded_and_worded(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    theirs = await _customer(stack, "zhaolei", "王芳")  # another guide's customer
    await stack.runtime.services.sync_tags()
    guide = await sign_in(stack, "lina")
    words = await _refusals(guide)
    tags, card = f"/customer/{customer}/tags", f"/customer/{customer}/card"
    cases: list[tuple[tuple[int, Any], int, str, str]] = [
        # the page's first request, the customer card, is refused like the others
        (await guide.get(f"/customer/{theirs}"), 404, "sidebar.customer_unknown",
         "你没有添加这位客户，无法查看或操作。"),
        (await guide.get("/customer/wmNOBODY"), 404, "sidebar.customer_unknown",
         "你没有添加这位客户，无法查看或操作。"),
        (await guide.post(tags, {"add": ["没有这个标签", "也没有"]}), 400, "tags_unknown",
         "标签库中没有这些标签：没有这个标签、也没有。"),
        (await guide.post(tags, {}), 400, "tags_edit_empty", "请选择要添加或移除的标签。"),
        (await guide.post(tags, {"add": "复购客"}), 400, "sidebar.tag_names",
         "请选择标签库中的标签。"),
        (await guide.post(tags, ["复购客"]), 400, "sidebar.body",
         "请求内容有误，请重新打开侧边栏后再试。"),
        (await _raw(guide, tags, b"{not json", content_type="application/json"), 400,
         "sidebar.body", "请求内容有误，请重新打开侧边栏后再试。"),
        (await guide.post(tags, {"add": ["复购客"]}, csrf="forged"), 403, "sidebar.csrf",
         "页面已过期，请重新打开侧边栏。"),
        (await guide.post("/customer/wmNOBODY/tags", {"add": ["复购客"]}), 404,
         "sidebar.customer_unknown", "你没有添加这位客户，无法查看或操作。"),
        (await guide.post(card, {}), 400, "sidebar.sku", "请选择要发送的商品。"),
        (await guide.post(card, {"sku": "SKU-NONE"}), 400, "sidebar.sku_unknown",
         "商品库中没有商品「SKU-NONE」。"),
        (await guide.get("/signature?url=x"), 400, "sidebar.url",
         "页面地址不完整，请重新打开侧边栏。"),
    ]
    await _fault(stack, "externalcontact/mark_tag", 84061)  # the customer deleted the guide
    cases.append((await guide.post(tags, {"add": ["复购客"]}), 409, "sidebar.no_relation",
                  "企业微信显示你与这位客户已不是好友。"))
    await _fault(stack, "externalcontact/remark", 40003)
    cases.append((await guide.post(f"/customer/{customer}/remark", {"remark": "老客"}), 502,
                  "sidebar.wecom", "企业微信拒绝了 remark（错误码 40003），请稍后重试。"))
    for (status, answer), want_status, code, chinese in cases:
        assert (status, answer["code"]) == (want_status, code), answer
        assert _worded(words, answer) == chinese
    async with aiohttp.ClientSession() as http:  # no session; an unknown tenant
        for url, want in ((f"{stack.bot_url}/sidebar/acme/customer/{customer}",
                           (401, "sidebar.signed_out")),
                          (f"{stack.bot_url}/sidebar/nosuch/customer/{customer}",
                           (404, "sidebar.tenant_unknown"))):
            async with http.get(url) as resp:
                answer = await resp.json()
                assert (resp.status, answer["code"]) == want, answer
                assert _worded(words, answer)
    await guide.http.close()


async def test_material_refusals_are_coded_and_worded(stack: Stack) -> None:
    customer = await _customer(stack, "lina", "陈思")
    guide = await sign_in(stack, "lina")
    words = await _refusals(guide)
    empty, stray, long, pending = (_form(name, value) for name, value in (
        ("text", " "), ("note", "x"), ("text", "好" * 2700), ("text", "待审核的投稿")))
    many = aiohttp.FormData()
    for n in range(10):
        many.add_field("picture", GIF, filename=f"p{n}.png", content_type="image/png")
    status, made = await _raw(guide, "/materials", pending)
    assert status == 201, made
    use = {"external_userid": customer}
    cases = [
        (await _raw(guide, "/materials", empty), 400, "material.contribution_empty",
         "请填写文案或添加 JPG/PNG 图片。"),
        (await _raw(guide, "/materials", stray), 400, "sidebar.upload_form",
         "投稿只能包含文案和图片。"),
        (await _raw(guide, "/materials", b"text=x",
                    content_type="application/x-www-form-urlencoded"), 400,
         "sidebar.upload_form", "投稿只能包含文案和图片。"),
        (await _raw(guide, "/materials", long), 400, "sidebar.upload_text_long",
         "文案最多 2000 字。"),
        (await _raw(guide, "/materials", many), 400, "material.pictures", "图片最多 9 张。"),
        (await guide.post("/materials/nosuch/use", use), 404, "material.unknown",
         "没有素材「nosuch」。"),
        # the admin API's status for it too (POST /api/v1/{t}/materials/{id}/uses)
        (await guide.post(f"/materials/{made['material']['id']}/use", use), 409,
         "material.not_approved", "只能发送已审核通过的素材。"),
        (await guide.post("/materials/scarf_oat_styling/use", {**use, "channel": "fax"}), 400,
         "material.channel", "素材的使用方式不正确。"),
        (await guide.post("/materials/scarf_oat_styling/use", {**use, "key": 5}), 400,
         "sidebar.body", "请求内容有误，请重新打开侧边栏后再试。"),
    ]
    await _fault(stack, "media/upload", 40004)  # the material's picture is refused
    cases.append((await guide.post("/materials/scarf_oat_styling/use", use), 502,
                  "sidebar.wecom", "企业微信拒绝了 media/upload（错误码 40004），请稍后重试。"))
    for (status, answer), want_status, code, chinese in cases:
        assert (status, answer["code"]) == (want_status, code), answer
        assert _worded(words, answer) == chinese
    await guide.http.close()
