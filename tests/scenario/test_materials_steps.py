"""Welcome and reminder steps naming a stored material: checked when sent like 群发 steps (a
withdrawn one sends nothing and the step fails with the reason); a sent one is a use, the
welcome's reaching the new customer, and the contributor earns points."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from guidebot import jobs
from guidebot.db.models_materials import MaterialUse
from guidebot.db.repo import sop_plan
from tests.scenario.test_materials_review import approved, contribute, period
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.stack import Stack, library_copy, start_stack

SOP = """
id = "mat_steps"
title = "素材欢迎"
enabled = true
quiet_hours = "00:00-00:00"  # none: the test runs at any time of day

[trigger]
on = "contact_added"

[[steps]]
at = "+0m"
channel = "welcome"
material = "{material}"

[[steps]]
at = "+1m"
channel = "reminder"
material = "{material}"
"""


@pytest.fixture
async def steps_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = library_copy(tmp_path, {})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library,
                              acme_config='miniprogram_appid = "wxbrandstore0001"\n')
    yield stack, library
    await stack.http.close()


async def with_welcome_sop(stack: Stack, library: Path, material: str) -> None:
    """The SOP whose welcome and reminder steps name `material`, read by the running app."""
    (library / "sops" / "mat_steps.toml").write_text(SOP.format(material=material),
                                                     encoding="utf-8")
    await jobs.run_library_reload(stack.runtime.services)
    await jobs.run_library_reload(stack.runtime.services)


async def steps_of(stack: Stack, guide: str, customer: str) -> list[tuple[str, str, str]]:
    async with stack.runtime.services.db.read() as s:
        enrollment = await sop_plan.find_enrollment(s, tenant="acme", sop_id="mat_steps",
                                                    external_userid=customer, guide=guide)
        assert enrollment is not None and enrollment.id is not None
        steps = await sop_plan.enrollment_steps(s, enrollment_id=enrollment.id)
    return [(st.channel, st.status, st.reason) for st in steps]


async def reminders(stack: Stack, guide: str) -> list[dict[str, Any]]:
    return [c["body"] for c in stack.calls("message/send") if c["body"].get("touser") == guide
            and c["body"].get("msgtype") == "textcard" and c["errcode"] == 0]


async def test_welcome_and_reminder_steps_send_a_stored_material_checked_when_sent(
        steps_stack: tuple[Stack, Path], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="guidebot.contacts.welcome")
    stack, library = steps_stack
    material = await approved(stack, "lina", "新客见面礼：燕麦围巾")
    await with_welcome_sop(stack, library, material)

    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    [welcome] = [c["body"] for c in stack.calls("externalcontact/send_welcome_msg")]
    assert welcome["welcome_code"] == added["welcome_code"]
    assert f"welcome tenant=acme message=material:{material} outcome=done" in caplog.messages
    assert welcome["text"]["content"] == "新客见面礼：燕麦围巾"
    [image] = welcome["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"]
    assert (await steps_of(stack, "zhaolei", customer))[0] == ("welcome", "sent", "")
    _, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["customers_reached"]) == (1, 1), stats
    _, board = await stack.admin(f"/points/leaderboard?period={period()}")
    assert board["guides"] == [{"rank": 1, "guide": "lina", "points": 5, "uses": 1}], board

    sop = stack.runtime.services.sop
    sop.clock = lambda: datetime.now(UTC) + timedelta(minutes=2)
    await sop.tick("acme")
    [card] = await reminders(stack, "zhaolei")
    assert card["textcard"]["description"] == "新客见面礼：燕麦围巾"
    _, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["customers_reached"]) == (2, 1), stats

    # withdrawn: the next add's welcome and reminder send nothing and say why
    status, body = await stack.admin(f"/materials/{material}/withdraw", method="POST", json={})
    assert status == 200, body
    caplog.set_level(logging.INFO)
    other = await stack.sandbox.simulate_add_contact("acme", userid="wangfang", name="李雷")
    await stack.runtime.drain()
    second = str(other["external_userid"])
    assert len(stack.calls("externalcontact/send_welcome_msg")) == 1
    reason = f"material {material!r} is withdrawn, not approved"
    assert f"welcome tenant=acme not sent: {reason}" in caplog.messages
    assert (await steps_of(stack, "wangfang", second))[0] == (
        "welcome", "failed", f"welcome not sent ({reason})")
    sop.clock = lambda: datetime.now(UTC) + timedelta(minutes=2)
    await sop.tick("acme")
    assert await reminders(stack, "wangfang") == []
    _, body = await stack.admin("/tasks?guide=wangfang")
    assert [(t["kind"], t["status"], t["note"]) for t in body["tasks"]] == [
        ("reminder", "failed", reason)], body
    _, stats = await stack.admin(f"/materials/{material}/stats")
    assert stats["uses"] == 2, stats


async def test_a_welcome_steps_material_card_carries_the_guides_token_and_counts_for_it(
        steps_stack: tuple[Stack, Path]) -> None:
    """The card in a material's welcome is tracked for the adding guide; its token is the
    use's, so the card's opens and orders count for the material."""
    stack, library = steps_stack
    material = await contribute(stack, "lina", "围巾见面礼")
    status, body = await stack.admin(f"/materials/{material}", method="PUT", json={
        "title": "围巾见面礼", "text": "围巾见面礼", "skus": ["SKU-SCARF-03"]})
    assert status == 200, body
    status, body = await stack.admin(f"/materials/{material}/approve", method="POST",
                                     json={"grade": "A"})
    assert status == 200, body
    await with_welcome_sop(stack, library, material)

    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    [welcome] = [c["body"] for c in stack.calls("externalcontact/send_welcome_msg")]
    card = welcome["attachments"][-1]
    assert card["msgtype"] == "miniprogram", welcome
    token = parse_qs(urlsplit(card["miniprogram"]["page"]).query)["t"][0]
    assert token

    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params=signed_visit(stack, token, external_userid=customer)):
        pass
    status, body = await post_settled(stack, paid("WELCOME-MAT-1", customer=customer, items=[
        {"sku": "SKU-SCARF-03", "category": "accessories", "quantity": 1,
         "amount_fen": 89900}]))
    assert status == 200 and body["guide"] == "zhaolei", body  # the adding guide's card
    _, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["customers_reached"]) == (1, 1), stats
    assert (stats["card_opens"], stats["orders"], stats["gmv_fen"]) == (1, 1, 89900), stats

    other = await stack.sandbox.simulate_add_contact("acme", userid="wangfang", name="李雷")
    await stack.runtime.drain()  # its own welcome (its own code), its own use
    welcomes = [c["body"] for c in stack.calls("externalcontact/send_welcome_msg")]
    assert [w["welcome_code"] for w in welcomes] == [added["welcome_code"],
                                                     other["welcome_code"]]
    _, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["customers_reached"]) == (2, 2), stats
    async with stack.runtime.services.db.read() as s:  # the use names the card it sent
        uses = (await s.execute(select(MaterialUse).where(
            MaterialUse.material_id == material))).scalars().all()
    assert [(u.channel, u.key, u.guide, u.token) for u in uses][0] == (
        "sop", f"welcome:{added['welcome_code']}", "zhaolei", token)


async def test_a_welcome_step_naming_an_hq_library_material_records_its_use_and_card(
        steps_stack: tuple[Stack, Path], caplog: pytest.LogCaptureFixture) -> None:
    """HQ's own materials (content_library/materials/) are library messages: the welcome
    renders and sends it as any message, and it is one use of the material, under the
    token of the card it carried."""
    stack, library = steps_stack
    await with_welcome_sop(stack, library, "scarf_oat_styling")
    caplog.set_level(logging.INFO, logger="guidebot.contacts.welcome")
    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    [welcome] = [c["body"] for c in stack.calls("externalcontact/send_welcome_msg")]
    assert welcome["text"]["content"].startswith("降温了，一条燕麦色羊绒围巾")
    assert [a["msgtype"] for a in welcome["attachments"]] == ["image", "miniprogram"]
    token = parse_qs(urlsplit(welcome["attachments"][1]["miniprogram"]["page"]).query)["t"][0]
    assert token
    assert ("welcome tenant=acme message=material:scarf_oat_styling outcome=done"
            in caplog.messages)
    async with stack.runtime.services.db.read() as s:
        uses = (await s.execute(select(MaterialUse).where(
            MaterialUse.material_id == "scarf_oat_styling"))).scalars().all()
    assert [(u.channel, u.key, u.guide, u.token) for u in uses] == [
        ("sop", f"welcome:{added['welcome_code']}", "zhaolei", token)]
