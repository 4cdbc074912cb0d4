"""The console's SOP page over HTTP: enrolling an audience by guide and a customer list
(CSRF-checked, through the same service as the admin API), switching the SOP off and on,
and each step's conversion after the 群发, a confirmation, a click and an order."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import event, select

from guidebot.db.models_kf import OptOut
from guidebot.db.models_sop import SopEnrollment
from tests.scenario.test_sop_cards import card_stack  # noqa: F401  (the fixture)
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.console import Console, csrf_in, figure
from tests.support.stack import Stack, known

PAGE = "/console/acme/sops/flash_card"


def _row(html: str, step: int) -> str:
    start = html.index(f'<tr data-step="{step}">')
    return html[start:html.index("</tr>", start)]


async def test_sop_page_enrolls_switches_and_shows_each_steps_conversion(
        card_stack: Stack) -> None:  # noqa: F811
    stack = card_stack
    sop = stack.runtime.services.sop
    noon = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    sop.clock = lambda: noon
    listed = []
    for guide in ("lina", "lina", "zhaolei"):
        added = await stack.sandbox.simulate_add_contact("acme", userid=guide, deliver=False)
        listed.append((added["external_userid"], guide))
        await known(stack, customers=(added["external_userid"],), guides=(guide,))
    followed = await stack.sandbox.simulate_add_contact("acme", userid="wangfang")
    await stack.runtime.drain()
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(PAGE)
        assert status == 200 and 'id="conversion"' in html
        csrf = csrf_in(html)
        lines = "\n".join(f"{c} {g}" for c, g in listed)
        status, _, _ = await console.post(f"{PAGE}/switch", {"enabled": "0"})
        assert status == 403  # no CSRF token
        status, _, _ = await console.post(f"{PAGE}/switch", {"enabled": "0", "_csrf": csrf})
        assert status == 303
        _, body = await stack.admin("/sops")
        flash = next(s for s in body["sops"] if s["id"] == "flash_card")
        assert (flash["enabled"], flash["switched_off"]) == (False, True)
        status, html, _ = await console.post(f"{PAGE}/enroll", {"guides": "wangfang",
                                                                "_csrf": csrf})
        assert status == 404 and "没有 SOP「flash_card」，或它已停用。" in html  # no one new joins
        status, body = await stack.admin("/sops/flash_card/switch", method="POST",
                                         json={"enabled": True, "operator": "hq"})
        assert (status, body) == (200, {"sop": "flash_card", "enabled": True,
                                        "switched_off": False})  # the admin API's twin
        status, body = await stack.admin("/sops/nosuch/switch", method="POST",
                                         json={"enabled": False})
        assert status == 404 and "sop_id" in str(body)

        status, _, _ = await console.post(f"{PAGE}/enroll", {"customers": lines})
        assert status == 403  # no CSRF token
        status, _, resp = await console.post(f"{PAGE}/enroll", {"guides": "wangfang",
                                                                "_csrf": csrf})
        assert status == 303 and resp.headers["Location"] == f"{PAGE}?enrolled=1"
        status, _, resp = await console.post(f"{PAGE}/enroll", {"customers": lines,
                                                                "_csrf": csrf})
        assert status == 303 and resp.headers["Location"] == f"{PAGE}?enrolled=3"
        status, html, _ = await console.post(
            f"{PAGE}/enroll", {"customers": lines + "\nwmNOBODY lina", "_csrf": csrf})
        assert status == 400 and "未加入任何客户" in html  # the whole list is checked first
        assert f"第 {lines.count(chr(10)) + 2} 行： 本品牌没有客户 wmNOBODY。" in html
        for form, said in (({"customers": "wm1 lina\nwm2"}, "客户列表第 2 行"),
                           ({"customers": lines, "guides": "lina"}, "不能同时使用"),
                           ({}, "请选择标签、导购或填写客户列表")):
            status, html, _ = await console.post(f"{PAGE}/enroll", {**form, "_csrf": csrf})
            assert status == 400 and said in html and "未加入任何客户" in html, form
        status, html, _ = await console.get(f"{PAGE}?enrolled=3")
        assert "进行中 4" in html and 'id="enrolled"' in html

        sop.clock = lambda: noon + timedelta(minutes=2)
        await sop.tick("acme")
        sends = {c["body"]["sender"]: c for c in stack.calls("externalcontact/add_msg_template")}
        assert sorted(sends) == ["lina", "wangfang", "zhaolei"]

        _, body = await stack.admin("/tasks?guide=lina")
        task = next(t for t in body["tasks"] if t["kind"] == "guide_task")
        stack.sandbox.confirm_groupmsg("acme", task["msgid"], "lina")
        sop.clock = lambda: noon + timedelta(days=1)
        assert await sop.track("acme") >= 1
        [card] = [a["miniprogram"] for a in sends["lina"]["body"]["attachments"]]
        token = parse_qs(urlsplit(card["page"]).query)["t"][0]
        async with stack.http.get(f"{stack.bot_url}/t/{token}",
                                  params=signed_visit(stack, token,
                                                      external_userid=listed[0][0])) as resp:
            assert resp.status == 204
        status, body = await post_settled(stack, paid("SOP-CONV-1", customer=listed[0][0],
                                                    tracking=token,
                                                    items=[{"sku": "SKU-SERUM-02",
                                                            "category": "beauty",
                                                            "amount_fen": 59900}]))
        assert status == 200

        _, html, _ = await console.get(PAGE)
        row = _row(html, 0)
        assert {k: figure(row, k) for k in ("sent", "confirmed", "clicks", "clickers",
                                            "orders", "gmv")} == {
            "sent": "4", "confirmed": "2", "clicks": "1", "clickers": "1", "orders": "1",
            "gmv": "¥599.00"}
        assert followed["external_userid"]
    finally:
        await console.close()


async def test_a_customer_list_answers_each_refused_line_and_enrolls_all_or_none(
        stack: Stack) -> None:
    """Each line is answered as a single enrolment would be (unknown customer before unknown
    guide, opted out); one refused line enrolls no one; the list without it enrolls every
    line once, and again enrolls no one new."""
    await known(stack, customers=("wmListA", "wmListB", "wmListOut"),
                guides=("lina", "zhaolei"))
    async with stack.runtime.services.db.write() as s:
        s.add(OptOut(tenant="acme", external_userid="wmListOut", msgid="kf-msg-list"))
    page = "/console/acme/sops/repurchase_care"
    good = ["wmListA lina", "wmListB,zhaolei"]
    bad = ["wmNOBODY lina", "wmListA nobodyguide", "wmListOut\tlina", "wmNOBODY nobodyguide"]
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        _, html, _ = await console.get(page)
        csrf = csrf_in(html)
        status, html, _ = await console.post(f"{page}/enroll", {
            "customers": "\n".join([good[0], *bad, good[1]]), "_csrf": csrf})
        assert status == 400
        said = re.search(r"客户列表中有不能加入的客户，未加入任何客户：(.*?)</", html, re.S)
        assert said and said.group(1).split("; ") == [
            "第 2 行： 本品牌没有客户 wmNOBODY。", "第 3 行： 本品牌没有导购 nobodyguide。",
            "第 4 行： 客户 wmListOut 已退订消息，SOP 不会加入该客户。",
            "第 5 行： 本品牌没有客户 wmNOBODY。"], html
        assert await _enrolled(stack, "repurchase_care") == []

        ran: list[str] = []
        engine = stack.runtime.services.db.engine.sync_engine
        listener = lambda _c, _k, statement, *_: ran.append(" ".join(statement.split()))  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            status, _, resp = await console.post(f"{page}/enroll", {
                "customers": "\n".join(good), "_csrf": csrf})
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert status == 303 and resp.headers["Location"] == f"{page}?enrolled=2"
        # each line checked once: its guide is read once, not again to enrol it
        assert sum(" FROM guides " in f"{st} " for st in ran) == len(good), ran
        assert await _enrolled(stack, "repurchase_care") == [("wmListA", "lina"),
                                                             ("wmListB", "zhaolei")]
        status, _, resp = await console.post(f"{page}/enroll", {
            "customers": "\n".join(good), "_csrf": csrf})
        assert status == 303 and resp.headers["Location"] == f"{page}?enrolled=0"
        assert len(await _enrolled(stack, "repurchase_care")) == 2
    finally:
        await console.close()


async def _enrolled(stack: Stack, sop_id: str) -> list[tuple[str, str]]:
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopEnrollment).where(
            SopEnrollment.sop_id == sop_id))).scalars()
        return sorted((r.external_userid, r.guide) for r in rows)
