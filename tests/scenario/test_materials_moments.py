"""Moments naming a material: a stored material goes out as a moment carries it (its
pictures, its video or its link; one with a product card is refused with the reason, as a
library file naming such a material is refused when the library loads), and its use and the
contributor's points count when the guide publishes the moment, not when the task is made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot import jobs
from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from tests.scenario.test_materials_review import approved, period
from tests.support.stack import Stack, library_copy, start_stack

APPID = 'miniprogram_appid = "wxbrandstore0001"\n'
DROP_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(200))
DROP = """
id = "{id}"
title = "素材朋友圈"
enabled = true
at = 2026-11-21T10:00:00+08:00
channel = "moment"
material = "{material}"

[audience]
guides = ["zhaolei"]
"""


def test_a_moment_naming_a_material_with_a_product_card_is_refused(tmp_path: Path) -> None:
    bad = library_copy(tmp_path, {
        "drops/card.toml": DROP.format(id="card", material="scarf_oat_styling")})
    with pytest.raises(ContentInvalid) as info:
        load_library(bad)
    lines = [str(p) for p in info.value.problems]
    assert any("card.toml:7" in x and "a moment cannot carry miniprogram" in x
               for x in lines), lines


@pytest.fixture
async def moment_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = library_copy(tmp_path, {
        "media/clip.mp4": MP4,
        **{f"drops/{m}.toml": DROP.format(id=m, material=f"hq-{m}")
           for m in ("video", "link", "card")}})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library,
                              acme_config=APPID)
    yield stack, library
    await stack.http.close()


async def fire(stack: Stack, at: datetime) -> None:
    """The drops due at DROP_AT are made into tasks and sent."""
    await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    sop = stack.runtime.services.sop
    sop.clock = lambda: at
    await sop.singletons("acme")
    await sop.singletons("acme")
    await sop.tick("acme")


async def moment_tasks(stack: Stack) -> dict[str, dict[str, Any]]:
    status, body = await stack.admin("/tasks?guide=zhaolei")
    assert status == 200, body
    return {t["source"]: t for t in body["tasks"] if t["kind"] == "moment"}


async def test_a_stored_materials_video_and_link_go_out_and_a_card_is_refused(
        moment_stack: tuple[Stack, Path]) -> None:
    stack, _ = moment_stack
    for ident, extra in (("video", {"video": "media/clip.mp4"}),
                         ("link", {"link": {"title": "本周上新", "url": "https://example.com/n"}}),
                         ("card", {"skus": ["SKU-SCARF-03"]})):
        status, body = await stack.admin("/materials", method="POST", json={
            "id": f"hq-{ident}", "title": ident, "text": f"素材 {ident}", "grade": "B",
            **extra})
        assert status == 201, body
    await fire(stack, DROP_AT + timedelta(minutes=5))
    sent = {c["body"]["text"]["content"]: c["body"]
            for c in stack.calls("externalcontact/add_moment_task") if c["errcode"] == 0}
    assert set(sent) == {"素材 video", "素材 link"}, sent
    [video] = sent["素材 video"]["attachments"]
    assert video["msgtype"] == "video"
    media = stack.sandbox.tenants["acme"].media[video["video"]["media_id"]]
    assert media.type == "video" and media.data == MP4
    assert sent["素材 link"]["attachments"] == [{"msgtype": "link", "link": {
        "title": "本周上新", "url": "https://example.com/n"}}]
    tasks = await moment_tasks(stack)
    assert (tasks["drop:card"]["status"], tasks["drop:card"]["note"]) == (
        "failed", "material 'hq-card' carries a product card (mini-program), which a moment "
                  "cannot carry")


async def test_a_moments_use_and_points_count_once_the_guide_published_it(
        moment_stack: tuple[Stack, Path]) -> None:
    stack, library = moment_stack
    material = await approved(stack, "lina", "燕麦围巾的三种系法")
    for name in ("video", "link", "card"):  # only the guide's material here
        (library / "drops" / f"{name}.toml").unlink()
    (library / "drops" / "guide.toml").write_text(DROP.format(id="guide", material=material),
                                                  encoding="utf-8")
    await jobs.run_library_reload(stack.runtime.services)
    await jobs.run_library_reload(stack.runtime.services)

    await fire(stack, DROP_AT + timedelta(minutes=5))
    [call] = stack.calls("externalcontact/add_moment_task")
    assert call["errcode"] == 0 and call["body"]["text"]["content"] == "燕麦围巾的三种系法"
    [image] = call["body"]["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"]

    async def figures() -> tuple[int, list[dict[str, Any]]]:
        _, stats = await stack.admin(f"/materials/{material}/stats")
        _, board = await stack.admin(f"/points/leaderboard?period={period()}")
        return stats["uses"], board["guides"]

    assert await figures() == (0, [])  # the task is made: nothing counts yet
    sop = stack.runtime.services.sop
    for minutes in (40, 80):  # the job is done, then the guide has not published yet
        sop.clock = lambda m=minutes: DROP_AT + timedelta(minutes=m)
        await sop.track("acme")
    task = (await moment_tasks(stack))["drop:guide"]
    assert task["detail"]["moment"]["published"] is False, task
    assert len(stack.calls("externalcontact/get_moment_task")) == 1
    assert await figures() == (0, [])

    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/simulate/moment_published",
                               json={"moment_id": task["detail"]["moment"]["moment_id"],
                                     "userid": "zhaolei"}) as resp:
        assert resp.status == 200, await resp.text()
    for minutes in (120, 160, 200):  # published: counted once, then no more looks
        sop.clock = lambda m=minutes: DROP_AT + timedelta(minutes=m)
        await sop.track("acme")
    assert len(stack.calls("externalcontact/get_moment_task")) == 2
    assert await figures() == (1, [{"rank": 1, "guide": "lina", "points": 5, "uses": 1}])
    task = (await moment_tasks(stack))["drop:guide"]
    assert task["status"] == "sent" and task["detail"]["moment"]["published"] is True, task
