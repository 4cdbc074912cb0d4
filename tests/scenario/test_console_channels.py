"""The console's 渠道活码 page: a QR code and a 获客助手 link created from its form (the same
service as the admin API), listed with the customers each brought; refusals worded."""

from __future__ import annotations

import re

from tests.support.console import Console, csrf_in
from tests.support.stack import Stack


async def test_channel_codes_are_made_and_counted_on_the_console(stack: Stack) -> None:
    await stack.sandbox.simulate_add_contact("acme", userid="lina", name="王芳")
    await stack.runtime.drain()  # lina is a guide guidebot knows
    await stack.runtime.services.sync_tags()
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/channels")
        assert status == 200 and "还没有渠道活码" in html
        form = {"_csrf": csrf_in(html), "kind": "qr", "guide": "lina", "store": "",
                "campaign": "双12", "tag": "门店扫码", "welcome": ""}
        status, _, resp = await console.post("/console/acme/channels", form)
        assert status == 303, status
        made = int(resp.headers["Location"].rsplit("=", 1)[1])
        status, _, resp = await console.post("/console/acme/channels",
                                             {**form, "kind": "link", "campaign": "抖音"})
        assert status == 303
        _, listed = await stack.admin("/channels")
        qr = next(c for c in listed["channels"] if c["id"] == made)
        link = next(c for c in listed["channels"] if c["kind"] == "link")
        assert (qr["kind"], qr["campaign"], qr["tags"]) == ("qr", "双12", ["门店扫码"])
        added = await stack.sandbox.simulate_add_contact("acme", config_id=qr["config_id"],
                                                         name="李雷")
        await stack.runtime.drain()
        status, html, _ = await console.get(resp.headers["Location"])
        assert "已生成渠道活码" in html
        row = re.search(rf'data-channel="{made}".*?</tr>', html, re.S)
        assert row and 'data-col="adds">1<' in row.group(0), html
        assert "「联系我」二维码" in row.group(0) and "双12" in row.group(0)
        row = re.search(rf'data-channel="{link["id"]}".*?</tr>', html, re.S)
        assert row and "获客助手链接" in row.group(0) and "customer_channel=" in row.group(0)
        _, view = await stack.admin(f"/customers/{added['external_userid']}")
        assert view["channel"]["campaign"] == "双12"

        status, refused, _ = await console.post("/console/acme/channels",
                                                {**form, "tag": "没有这个标签"})
        assert status == 400 and "标签库中没有这些标签：没有这个标签" in refused
        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
                "tenant": "acme", "path": "externalcontact/add_contact_way", "errcode": 40001,
                "times": 1}) as answer:
            assert answer.status == 200
        status, refused, _ = await console.post("/console/acme/channels", form)
        assert status == 400 and "企业微信拒绝了请求（错误码 40001）" in refused
        _, after = await stack.admin("/channels")
        assert len(after["channels"]) == 2  # nothing stored for the refusals
    finally:
        await console.close()
