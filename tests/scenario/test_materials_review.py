"""Review, use, points and what a material sold, over the admin API with the real app and
sandbox: approve with a grade or reject with a reason (the guide is told), no approving a
withdrawn one, points only for other guides' uses and once per guide, material and day, HQ
adjustments, the leaderboard, and a material's card opens, orders and GMV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.scenario.test_materials_chat import PNG
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.materials import app_message, told
from tests.support.stack import Stack


async def contribute(stack: Stack, guide: str, text: str, picture: bool = True) -> str:
    if picture:
        await app_message(stack, guide, picture=PNG)
    await app_message(stack, guide, text=f"投稿 {text}")
    status, body = await stack.admin(f"/materials?contributor={guide}")
    assert status == 200, body
    return str(next(m["id"] for m in body["materials"] if m["text"] == text))


async def approved(stack: Stack, guide: str, text: str, grade: str = "A") -> str:
    """A guide's contribution (a picture and `text`), approved by HQ with `grade`; its id."""
    material = await contribute(stack, guide, text)
    status, body = await stack.admin(f"/materials/{material}/approve", method="POST",
                                     json={"grade": grade, "reviewer": "hq-anna"})
    assert status == 200, body
    return material


async def use(stack: Stack, material: str, guide: str, key: str,
              customer: str | None = None) -> tuple[int, Any]:
    body = {"guide": guide, "channel": "send", "key": key}
    if customer:
        body["external_userid"] = customer
    return await stack.admin(f"/materials/{material}/uses", method="POST", json=body)


def period() -> str:
    return datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")
                                        ).strftime("%Y-%m")


async def test_review_outcomes_reach_the_guide_and_withdrawn_stays_withdrawn(
        stack: Stack) -> None:
    kept = await contribute(stack, "lina", "羊绒围巾的披肩系法")
    refused = await contribute(stack, "lina", "随手拍", picture=False)
    gone = await contribute(stack, "lina", "撤回的投稿", picture=False)

    status, body = await stack.admin(f"/materials/{kept}/approve", method="POST",
                                     json={"grade": "A", "reviewer": "hq-anna"})
    assert status == 200 and (body["status"], body["grade"]) == ("approved", "A"), body
    assert "评级 A" in told(stack, "lina")[-1] and "5 积分" in told(stack, "lina")[-1]
    status, body = await stack.admin(f"/materials/{kept}/approve", method="POST",
                                     json={"grade": "S"})
    assert (status, body["field"], body["code"]) == (409, "status", "material.not_pending"), body

    status, body = await stack.admin(f"/materials/{refused}/reject", method="POST",
                                     json={"reason": "图片不清晰"})
    assert status == 200 and body["reason"] == "图片不清晰"
    assert told(stack, "lina")[-1].endswith("未通过审核：图片不清晰")

    status, body = await stack.admin(f"/materials/{gone}/withdraw", method="POST", json={})
    assert status == 200 and body["status"] == "withdrawn"
    sent = len(told(stack, "lina"))
    for step, payload in (("approve", {"grade": "B"}), ("reject", {"reason": "x"})):
        status, body = await stack.admin(f"/materials/{gone}/{step}", method="POST",
                                         json=payload)
        assert (status, body["field"]) == (409, "status"), body
    status, body = await use(stack, gone, "zhaolei", "w1")
    assert (status, body["code"]) == (409, "material.not_approved"), body  # nor used
    for step, payload in (("withdraw", {}), ("", {"title": "改", "text": "改后"})):
        status, body = await stack.admin(f"/materials/{gone}{'/' if step else ''}{step}",
                                         method="POST" if step else "PUT", json=payload)
        assert (status, body["field"], body["code"]) == (409, "status", "material.withdrawn")
    assert len(told(stack, "lina")) == sent  # nothing more told

    status, body = await stack.admin("/materials?status=")
    history = {m["id"]: m["history"] for m in body["materials"]}[kept]
    assert history == {"approved": 1, "grade_A": 1, "rejected": 1, "withdrawn": 1}
    status, body = await stack.admin(f"/materials/{kept}/approve", tenant="beta",
                                     method="POST", json={"grade": "A"})
    assert status == 404, body  # another tenant's material does not exist for beta


async def test_queue_is_oldest_first_and_batch_review_answers_each(stack: Stack) -> None:
    ids = [await contribute(stack, guide, f"批量 {n}", picture=False)
           for n, guide in enumerate(("lina", "zhaolei", "lina"))]
    status, body = await stack.admin("/materials")
    assert [m["id"] for m in body["materials"]] == ids
    status, body = await stack.admin("/materials/review", method="POST", json={
        "ids": [ids[0], ids[1], "no-such"], "action": "approve", "grade": "B"})
    assert status == 200
    assert [(r["id"], r["ok"]) for r in body["results"]] == [
        (ids[0], True), (ids[1], True), ("no-such", False)]
    status, body = await stack.admin("/materials/review", method="POST", json={
        "ids": [ids[2]], "action": "reject"})
    assert (status, body["field"]) == (400, "reason")
    status, body = await stack.admin("/materials")
    assert [m["id"] for m in body["materials"]] == [ids[2]]


async def test_uses_earn_points_once_per_guide_material_and_day(stack: Stack) -> None:
    material = await contribute(stack, "lina", "通勤围巾")
    await stack.admin(f"/materials/{material}/approve", method="POST", json={"grade": "A"})

    status, body = await use(stack, material, "zhaolei", "u1", customer="wmCUSTOMER1")
    assert status == 201 and (body["recorded"], body["points"]) == (True, 5), body
    assert body["text"] == "通勤围巾"
    [image] = body["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"]
    status, body = await use(stack, material, "zhaolei", "u1", customer="wmCUSTOMER1")
    assert status == 200 and (body["recorded"], body["points"]) == (False, 0)  # a replay
    status, body = await use(stack, material, "zhaolei", "u2", customer="wmCUSTOMER2")
    assert status == 201 and (body["recorded"], body["points"]) == (True, 0)  # same day
    status, body = await use(stack, material, "lina", "u3")
    assert status == 201 and body["points"] == 0  # her own use earns nothing
    status, body = await use(stack, material, "wangfang", "u4")
    assert body["points"] == 5

    status, body = await stack.admin("/points/adjustments", method="POST", json={
        "guide": "lina", "points": -3, "reason": "重复投稿", "operator": "hq", "key": "a1"})
    assert status == 201 and body["entry"]["points"] == -3
    again = await stack.admin("/points/adjustments", method="POST", json={
        "guide": "lina", "points": -3, "reason": "重复投稿", "operator": "hq", "key": "a1"})
    assert again[0] == 200 and again[1]["created"] is False
    other = await stack.admin("/points/adjustments", method="POST", json={
        "guide": "lina", "points": 9, "reason": "重复投稿", "operator": "hq", "key": "a1"})
    assert other[0] == 409
    status, body = await stack.admin(f"/points/leaderboard?period={period()}")
    assert body["guides"] == [{"rank": 1, "guide": "lina", "points": 7, "uses": 2}]
    status, body = await stack.admin(f"/points/leaderboard?period={period()}", tenant="beta")
    assert body["guides"] == []


async def test_stats_follow_the_senders_cards_to_orders(stack: Stack) -> None:
    material = await contribute(stack, "lina", "围巾送礼")
    status, body = await stack.admin(f"/materials/{material}", method="PUT", json={
        "title": "围巾送礼", "text": "围巾送礼", "skus": ["SKU-SCARF-03"],
        "occasions": ["送礼"]})
    assert status == 200 and body["version"] == 2 and body["pictures"], body
    status, body = await stack.admin(f"/materials/{material}")
    assert [v["version"] for v in body["versions"]] == [1, 2]
    await stack.admin(f"/materials/{material}/approve", method="POST", json={"grade": "S"})

    status, sent = await use(stack, material, "zhaolei", "s1", customer="wmBUYER")
    assert status == 201 and sent["points"] == 10
    card = sent["attachments"][-1]
    assert card["msgtype"] == "miniprogram"
    token = parse_qs(urlsplit(card["miniprogram"]["page"]).query)["t"][0]
    assert token == sent["token"]
    await use(stack, material, "zhaolei", "s2", customer="wmOTHER")  # same card, same token

    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params=signed_visit(stack, token)) as resp:
        assert resp.status in (200, 204, 302), await resp.text()
    status, body = await post_settled(stack, paid("MAT-1", tracking=token, items=[
        {"sku": "SKU-SCARF-03", "category": "accessories", "quantity": 1,
         "amount_fen": 89900}]))
    assert status == 200, body
    await post_settled(stack, paid("OTHER-1"))  # not through the material's card

    status, stats = await stack.admin(f"/materials/{material}/stats")
    assert status == 200, stats
    assert (stats["uses"], stats["customers_reached"], stats["card_opens"]) == (2, 2, 1)
    assert (stats["orders"], stats["gmv_fen"]) == (1, 89900)
    status, body = await stack.admin(f"/materials/{material}/stats", tenant="beta")
    assert status == 404
    status, body = await stack.admin(f"/materials/contributors?period={period()}")
    assert status == 200, body
    assert body["contributors"] == [{
        "guide": "lina", "materials": {"approved": 1}, "uses": 2, "customers_reached": 2,
        "card_opens": 1, "orders": 1, "gmv_fen": 89900, "points": 10}]
    status, body = await stack.admin("/materials", method="POST", json={
        "id": "search", "text": "保留字"})
    assert (status, body["field"]) == (400, "id")


async def test_hq_library_material_is_approved_and_sends_its_picture_and_card(
        stack: Stack) -> None:
    status, body = await stack.admin("/materials?status=approved")
    [hq] = [m for m in body["materials"] if m["id"] == "scarf_oat_styling"]
    assert (hq["source"], hq["grade"], hq["contributor"]) == ("hq", "A", "")
    status, sent = await use(stack, "scarf_oat_styling", "lina", "hq1", customer="wmC9")
    assert status == 201 and sent["points"] == 0  # HQ's material earns nobody points
    image, card = sent["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"]
    assert card["miniprogram"]["pic_media_id"] and "t=" in card["miniprogram"]["page"]
    uploads = stack.calls("media/upload")
    assert len(uploads) == 1  # the same picture for the image and the card: one upload

    status, body = await stack.admin("/materials", method="POST", json={
        "id": "hq-coat", "title": "大衣", "text": "大衣上新", "grade": "B"})
    assert status == 201 and body["status"] == "approved"
    again = await stack.admin("/materials", method="POST", json={
        "id": "hq-coat", "title": "大衣", "text": "大衣上新", "grade": "B"})
    assert again[0] == 200
    other = await stack.admin("/materials", method="POST", json={
        "id": "hq-coat", "title": "大衣", "text": "别的内容"})
    assert other[0] == 409
    status, body = await stack.admin("/materials/search?keyword=上新")
    assert [m["id"] for m in body["materials"]] == ["hq-coat"]
