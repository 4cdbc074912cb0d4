"""SOP steps and drops naming a material (`material = "<id>"`): HQ's library materials are
validated against content_library/materials/ with file:line; any other well-formed id names a
stored material (a guide's, or one added in the console), checked when the task is sent: an
approved one is sent with the sending guide's tracked card, a withdrawn or missing one fails the
task with its reason. Each task that sent a material records one use, and the contributor (not
HQ) earns points once per sending guide, material and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from guidebot import jobs
from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.db.repo import sop_plan
from tests.scenario.test_materials_review import contribute, period
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.sidebar import sign_in
from tests.support.stack import ROOT, Stack, known, library_copy, start_stack

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
APPID = 'miniprogram_appid = "wxbrandstore0001"\n'  # materials' cards name the tenant's
DROP_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def test_steps_and_drops_may_name_a_material_and_wrong_ones_say_where(tmp_path: Path) -> None:
    library = load_library(library_copy(tmp_path / "ok", {
        "drops/material_drop.toml": DATA / "material_drop.toml"}))
    assert library.drops["material_drop"].message == "material:scarf_oat_styling"
    message = library.messages["material:scarf_oat_styling"]
    assert [a["type"] for a in message.attachments] == ["image", "miniprogram"]
    assert message.attachments[1]["sku"] == "SKU-SCARF-03"

    drop = (DATA / "material_drop.toml").read_text(encoding="utf-8")
    sop = (ROOT / "tests/data/sop/flash.toml").read_text(encoding="utf-8")
    # an id the library does not hold may name a stored material (checked when sent)
    stored = load_library(library_copy(tmp_path / "stored", {
        "drops/material_drop.toml": drop.replace("scarf_oat_styling", "m-0a1b2c3d4e5f")}))
    assert stored.drops["material_drop"].message == "material:m-0a1b2c3d4e5f"
    assert "material:m-0a1b2c3d4e5f" not in stored.messages

    bad = library_copy(tmp_path / "bad", {
        "drops/unknown.toml": drop.replace("scarf_oat_styling", "No Such!"),
        "drops/both.toml": drop.replace('material = "', 'message = "welcome_default"\n'
                                        'material = "'),
        "sops/flash.toml": sop.replace('channel = "guide_task"\nmessage = "drop_double12_warmup"',
                                       'channel = "reminder"\nmaterial = "nope"', 1)})
    with pytest.raises(ContentInvalid) as info:
        load_library(bad)
    lines = [str(p) for p in info.value.problems]
    assert any("unknown.toml:8" in x and "unknown material id 'No Such!'" in x for x in lines)
    assert any("both.toml" in x and "not both" in x for x in lines)
    # a reminder (like every channel) may name a stored material, checked when sent
    assert not any("flash.toml" in x for x in lines), lines


@pytest.fixture
async def drop_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = library_copy(tmp_path, {"drops/material_drop.toml":
                                      DATA / "material_drop.toml"})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library,
                              acme_config=APPID)
    yield stack
    await stack.http.close()


async def test_a_drop_sends_the_material_and_its_card_counts_for_it(drop_stack: Stack) -> None:
    stack = drop_stack
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="周婷")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    sop = stack.runtime.services.sop
    sop.clock = lambda: DROP_AT + timedelta(minutes=5)
    await sop.singletons("acme")
    await sop.singletons("acme")
    await sop.tick("acme")
    [call] = stack.calls("externalcontact/add_msg_template")
    sent = call["body"]
    assert call["errcode"] == 0 and sent["external_userid"] == [customer]
    assert "燕麦色羊绒围巾" in sent["text"]["content"]
    image, card = sent["attachments"]
    assert image["msgtype"] == "image" and card["miniprogram"]["pic_media_id"]
    token = parse_qs(urlsplit(card["miniprogram"]["page"]).query)["t"][0]

    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params=signed_visit(stack, token, external_userid=customer)):
        pass
    status, body = await post_settled(stack, paid("SOP-MAT-1", customer=customer, items=[
        {"sku": "SKU-SCARF-03", "category": "accessories", "quantity": 1,
         "amount_fen": 89900}]))
    assert status == 200 and body["rule"] == "share_link", body
    status, stats = await stack.admin("/materials/scarf_oat_styling/stats")
    assert (stats["card_opens"], stats["orders"], stats["gmv_fen"]) == (1, 1, 89900), stats
    assert stats["uses"] == 1  # the drop's task is one use of the material
    assert stats["customers_reached"] == 1, stats
    status, board = await stack.admin(f"/points/leaderboard?period={period()}")
    assert status == 200 and board["guides"] == []  # HQ's material earns nobody points


SOP = """
id = "{sop}"
title = "素材 SOP"
enabled = true
quiet_hours = "00:00-00:00"  # none: the test runs at any time of day

[trigger]
on = "manual"

[[steps]]
at = "+1m"
channel = "guide_task"
material = "{material}"
"""


@pytest.fixture
async def sop_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = library_copy(tmp_path, {
        "sops/hq_console.toml": SOP.format(sop="hq_console", material="hq-coat"),
        "sops/missing.toml": SOP.format(sop="missing", material="no-such-material")})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library,
                              acme_config=APPID)
    yield stack, library
    await stack.http.close()


async def enroll(stack: Stack, sop_id: str, guide: str, customers: list[str]) -> datetime:
    """The guide's customers (in WeCom) enrolled in the SOP; when they were enrolled."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/seed", json={
            "follows": [{"userid": guide, "external_userid": c} for c in customers]}) as resp:
        assert resp.status == 200
    await known(stack, customers=tuple(customers), guides=(guide,))
    for customer in customers:
        status, body = await stack.admin(f"/sops/{sop_id}/enroll", method="POST",
                                         json={"external_userid": customer, "guide": guide})
        assert status == 201, body
    async with stack.runtime.services.db.read() as s:
        enrollment = await sop_plan.find_enrollment(s, tenant="acme", sop_id=sop_id,
                                                    external_userid=customers[0], guide=guide)
    assert enrollment is not None
    return enrollment.trigger_at


async def tick(stack: Stack, at: datetime) -> None:
    sop = stack.runtime.services.sop
    sop.clock = lambda: at
    await sop.tick("acme")


def templates(stack: Stack, guide: str) -> list[dict[str, Any]]:
    """What WeCom accepted from the guide's 群发 tasks."""
    return [c["body"] for c in stack.calls("externalcontact/add_msg_template")
            if c["body"]["sender"] == guide and c["errcode"] == 0]


async def guide_material_sop(stack: Stack, library: Path) -> str:
    """lina's material, approved (grade A) and named by the SOP `guide_material`; its id."""
    material = await contribute(stack, "lina", "燕麦围巾的三种系法")
    status, body = await stack.admin(f"/materials/{material}", method="PUT", json={
        "title": "围巾系法", "text": "燕麦围巾的三种系法", "skus": ["SKU-SCARF-03"]})
    assert status == 200, body
    status, body = await stack.admin(f"/materials/{material}/approve", method="POST",
                                     json={"grade": "A", "reviewer": "hq-anna"})
    assert status == 200, body
    # HQ names the approved material in an SOP file; the library reloads
    (library / "sops" / "guide_material.toml").write_text(
        SOP.format(sop="guide_material", material=material), encoding="utf-8")
    await jobs.run_library_reload(stack.runtime.services)
    await jobs.run_library_reload(stack.runtime.services)
    return material


async def test_an_sop_step_sends_a_guides_material_and_its_contributor_earns_points(
        sop_stack: tuple[Stack, Path]) -> None:
    stack, library = sop_stack
    material = await guide_material_sop(stack, library)

    customers = ["wmMATSOP01", "wmMATSOP02"]
    enrolled = await enroll(stack, "guide_material", "zhaolei", customers)
    await tick(stack, enrolled + timedelta(minutes=2))
    [sent] = templates(stack, "zhaolei")
    assert sorted(sent["external_userid"]) == customers
    assert sent["text"]["content"] == "燕麦围巾的三种系法"
    image, card = sent["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"]
    token = parse_qs(urlsplit(card["miniprogram"]["page"]).query)["t"][0]

    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params=signed_visit(stack, token, external_userid=customers[0])):
        pass
    status, body = await post_settled(stack, paid("SOP-GUIDE-1", customer=customers[0], items=[
        {"sku": "SKU-SCARF-03", "category": "accessories", "quantity": 1,
         "amount_fen": 89900}]))
    assert status == 200 and (body["rule"], body["guide"]) == ("share_link", "zhaolei"), body

    status, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["orders"], stats["gmv_fen"]) == (1, 1, 89900), stats
    assert stats["customers_reached"] == 2, stats  # the 群发 task reached both
    status, board = await stack.admin(f"/points/leaderboard?period={period()}")
    assert board["guides"] == [{"rank": 1, "guide": "lina", "points": 5, "uses": 1}], board

    # a second task of the same guide and material the same day: a use, no more points
    later = await enroll(stack, "guide_material", "zhaolei", ["wmMATSOP03"])
    await tick(stack, later + timedelta(minutes=2))
    await tick(stack, later + timedelta(minutes=3))  # nothing is sent or counted twice
    assert len(templates(stack, "zhaolei")) == 2
    status, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["customers_reached"]) == (2, 3), stats
    # the guide sends it again to a customer the first task reached: a use, no new customer
    status, used = await stack.admin(f"/materials/{material}/uses", method="POST", json={
        "guide": "zhaolei", "channel": "send", "external_userid": customers[0]})
    assert status == 201 and used["points"] == 0, used
    status, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["customers_reached"]) == (3, 3), stats
    status, board = await stack.admin(f"/points/leaderboard?period={period()}")
    assert board["guides"] == [{"rank": 1, "guide": "lina", "points": 5, "uses": 1}], board

    # the contributor's own SOP send earns her nothing
    own = await enroll(stack, "guide_material", "lina", ["wmMATSOP04"])
    await tick(stack, own + timedelta(minutes=2))
    assert len(templates(stack, "lina")) == 1
    status, board = await stack.admin(f"/points/leaderboard?period={period()}")
    assert board["guides"][0]["points"] == 5, board


async def test_a_withdrawn_or_missing_material_fails_the_task_with_its_reason(
        sop_stack: tuple[Stack, Path]) -> None:
    stack, _ = sop_stack
    status, body = await stack.admin("/materials", method="POST", json={
        "id": "hq-coat", "title": "大衣", "text": "大衣上新", "grade": "B"})
    assert status == 201, body
    status, body = await stack.admin("/materials/hq-coat/withdraw", method="POST", json={})
    assert status == 200 and body["status"] == "withdrawn", body

    enrolled = await enroll(stack, "hq_console", "lina", ["wmMATSOP05"])
    await enroll(stack, "missing", "lina", ["wmMATSOP06"])
    await tick(stack, enrolled + timedelta(minutes=2))
    await tick(stack, enrolled + timedelta(minutes=3))
    assert stack.calls("externalcontact/add_msg_template") == []  # nothing sent
    status, body = await stack.admin("/tasks?guide=lina")
    assert status == 200, body
    notes = {t["source"]: (t["status"], t["note"]) for t in body["tasks"]
             if t["kind"] == "guide_task"}
    assert notes == {
        "sop:hq_console": ("failed", "material 'hq-coat' is withdrawn, not approved"),
        "sop:missing": ("failed", "material 'no-such-material' does not exist")}, notes
    status, stats = await stack.admin("/materials/hq-coat/stats")
    assert stats["uses"] == 0, stats


async def test_a_sidebar_key_cannot_take_an_sop_tasks_use(
        sop_stack: tuple[Stack, Path]) -> None:
    """A guide's sidebar use posted with the key an SOP task's use will carry
    (`sop-task:<id>`) is kept under the guide's own key: the task's use is still recorded
    and its contributor still earns its points."""
    stack, library = sop_stack
    material = await guide_material_sop(stack, library)

    enrolled = await enroll(stack, "guide_material", "zhaolei", ["wmMATKEY01"])
    sop = stack.runtime.services.sop
    sop.clock = lambda: enrolled + timedelta(minutes=2)
    await sop.plan("acme")  # the task exists, not sent yet
    status, body = await stack.admin("/tasks?guide=zhaolei")
    [task] = body["tasks"]
    assert task["status"] == "queued", task

    wang = await sign_in(stack, "wangfang")
    try:
        for want in (201, 200):  # the same request again is the same use
            status, used = await wang.post(f"/materials/{material}/use",
                                           {"key": f"sop-task:{task['id']}"})
            assert status == want and used["recorded"] is (want == 201), used
    finally:
        await wang.http.close()

    await sop.dispatcher.run("acme")
    [sent] = templates(stack, "zhaolei")
    assert sent["external_userid"] == ["wmMATKEY01"]
    status, stats = await stack.admin(f"/materials/{material}/stats")
    assert (stats["uses"], stats["customers_reached"]) == (2, 1), stats
    status, board = await stack.admin(f"/points/leaderboard?period={period()}")
    assert board["guides"] == [{"rank": 1, "guide": "lina", "points": 10, "uses": 2}], board
