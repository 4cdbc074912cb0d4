"""A material's video goes out wherever WeCom takes a video attachment: 群发 tasks
(add_msg_template), welcomes (send_welcome_msg), moments and the sidebar's sendChatMessage.
It is uploaded with media/upload type=video and its media id reused while young, like a
picture's. A library material's video is checked when the file loads (file:line); a stored
material's when it is sent (the task fails with the reason). Each send is one use, and a
guide's material earns its contributor points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot import jobs
from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from tests.scenario.test_materials_moments import DROP as MOMENT_DROP
from tests.scenario.test_materials_moments import fire
from tests.scenario.test_materials_review import contribute, period
from tests.scenario.test_materials_steps import SOP as STEPS_SOP
from tests.support.sidebar import sign_in
from tests.support.stack import Stack, library_copy, start_stack

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4
VIDEO_MATERIAL = """
title = "燕麦围巾视频"
text = "三十秒学会燕麦围巾的系法"
video = "media/scarf.mp4"
skus = ["SKU-SCARF-03"]  # no picture to show a card with: it sends no card
grade = "A"
"""
# the welcome step, then a 群发 step a minute later (id "mat_steps")
SOP = STEPS_SOP.format(material="scarf_video").replace('channel = "reminder"',
                                                       'channel = "guide_task"')
DROP_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
DROP = MOMENT_DROP.replace('channel = "moment"', 'channel = "guide_task"').replace(
    'guides = ["zhaolei"]', 'guides = ["{guide}"]')


def test_a_library_materials_video_is_checked_with_file_and_line(tmp_path: Path) -> None:
    bad = library_copy(tmp_path, {
        "media/scarf.mp4": b"GIF89a" + bytes(64),
        "media/big.mp4": MP4[:8] + bytes(10 * 1024 * 1024),
        "materials/scarf_video.toml": VIDEO_MATERIAL,
        "materials/big_video.toml": VIDEO_MATERIAL.replace("scarf.mp4", "big.mp4"),
        "materials/gone_video.toml": VIDEO_MATERIAL.replace("scarf.mp4", "gone.mp4")})
    with pytest.raises(ContentInvalid) as info:
        load_library(bad)
    lines = [str(p) for p in info.value.problems]
    assert any("scarf_video.toml:4" in x and "'media/scarf.mp4' is not a MP4" in x
               for x in lines), lines
    assert any("big_video.toml:4" in x and "10 MB are allowed" in x for x in lines), lines
    assert any("gone_video.toml:4" in x and "'media/gone.mp4': no such file" in x
               for x in lines), lines


@pytest.fixture
async def video_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = library_copy(tmp_path, {
        "media/scarf.mp4": MP4, "materials/scarf_video.toml": VIDEO_MATERIAL,
        "sops/mat_steps.toml": SOP})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield stack, library
    await stack.http.close()


def video_of(stack: Stack, attachments: list[dict[str, Any]]) -> str:
    """The one video attachment's media id, checked to be the MP4 uploaded as a video."""
    [video] = [a for a in attachments if a["msgtype"] == "video"]
    media_id = str(video["video"]["media_id"])
    media = stack.sandbox.tenants["acme"].media[media_id]
    assert (media.type, media.data) == ("video", MP4)
    return media_id


async def figures(stack: Stack, material: str) -> tuple[int, int, list[dict[str, Any]]]:
    _, stats = await stack.admin(f"/materials/{material}/stats")
    _, board = await stack.admin(f"/points/leaderboard?period={period()}")
    return stats["uses"], stats["customers_reached"], board["guides"]


async def test_a_library_materials_video_goes_out_in_the_welcome_and_the_group_task(
        video_stack: tuple[Stack, Path]) -> None:
    stack, _ = video_stack
    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    [welcome] = [c for c in stack.calls("externalcontact/send_welcome_msg")]
    assert welcome["errcode"] == 0, welcome
    assert welcome["body"]["text"]["content"] == "三十秒学会燕麦围巾的系法"
    first = video_of(stack, welcome["body"]["attachments"])
    assert len(welcome["body"]["attachments"]) == 1
    assert await figures(stack, "scarf_video") == (1, 1, [])  # HQ's: nobody earns points

    sop = stack.runtime.services.sop
    sop.clock = lambda: datetime.now(UTC) + timedelta(minutes=2)
    await sop.tick("acme")
    [task] = [c for c in stack.calls("externalcontact/add_msg_template")]
    assert task["errcode"] == 0 and task["body"]["external_userid"] == [customer], task
    assert video_of(stack, task["body"]["attachments"]) == first  # the young id, reused
    assert [c["query"]["type"] for c in stack.calls("media/upload")] == ["video"]
    assert await figures(stack, "scarf_video") == (2, 1, [])


async def test_a_stored_materials_video_goes_out_in_a_drop_and_earns_points(
        video_stack: tuple[Stack, Path]) -> None:
    stack, library = video_stack
    material = await contribute(stack, "lina", "燕麦围巾上身视频", picture=False)
    status, body = await stack.admin(f"/materials/{material}", method="PUT", json={
        "text": "燕麦围巾上身视频", "video": "media/scarf.mp4", "editor": "hq-anna"})
    assert status == 200, body
    status, body = await stack.admin(f"/materials/{material}/approve", method="POST",
                                     json={"grade": "A", "reviewer": "hq-anna"})
    assert status == 200, body
    status, body = await stack.admin("/materials", method="POST", json={
        "id": "hq-no-video", "title": "没有的视频", "text": "视频不在素材库",
        "video": "media/elsewhere.mp4", "grade": "B"})
    assert status == 201, body
    (library / "sops" / "mat_steps.toml").unlink()  # only the drops here
    for ident, named, guide in (("lina_video", material, "zhaolei"),
                                ("missing_video", "hq-no-video", "wangfang")):
        (library / "drops" / f"{ident}.toml").write_text(
            DROP.format(id=ident, material=named, guide=guide), encoding="utf-8")
    await jobs.run_library_reload(stack.runtime.services)
    await jobs.run_library_reload(stack.runtime.services)

    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.sandbox.simulate_add_contact("acme", userid="wangfang", name="李雷")
    await stack.runtime.drain()
    sop = stack.runtime.services.sop
    sop.clock = lambda: DROP_AT + timedelta(minutes=5)
    await sop.singletons("acme")
    await sop.singletons("acme")
    await sop.tick("acme")
    [task] = [c for c in stack.calls("externalcontact/add_msg_template")]
    assert task["errcode"] == 0, task
    assert task["body"]["external_userid"] == [added["external_userid"]]
    assert task["body"]["text"]["content"] == "燕麦围巾上身视频"
    video_of(stack, task["body"]["attachments"])
    assert await figures(stack, material) == (
        1, 1, [{"rank": 1, "guide": "lina", "points": 5, "uses": 1}])

    _, body = await stack.admin("/tasks?guide=wangfang")
    failed = {t["source"]: (t["status"], t["note"]) for t in body["tasks"]}
    assert failed["drop:missing_video"] == (
        "failed", "material 'hq-no-video' cannot be sent: video 'media/elsewhere.mp4': no "
                  "such file"), body


async def test_the_sidebar_hands_the_video_to_send_chat_message(
        video_stack: tuple[Stack, Path]) -> None:
    stack, _ = video_stack
    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    zhao = await sign_in(stack, "zhaolei")
    try:
        status, used = await zhao.post("/materials/scarf_video/use", {
            "external_userid": str(added["external_userid"]), "key": "tap-1"})
        assert status == 201, used
        media_id = video_of(stack, used["attachments"])
        assert used["messages"] == [
            {"msgtype": "text", "text": {"content": "三十秒学会燕麦围巾的系法"}},
            {"msgtype": "video", "video": {"mediaid": media_id}}]
        status, body = await stack.admin("/materials", method="POST", json={
            "id": "hq-no-video", "text": "视频不在素材库", "video": "media/elsewhere.mp4",
            "grade": "B"})
        assert status == 201, body
        status, refused = await zhao.post("/materials/hq-no-video/use", {"key": "tap-2"})
        assert status == 400 and "'media/elsewhere.mp4': no such file" in str(refused), refused
    finally:
        await zhao.http.close()
    # the customer's welcome carried the video too: two uses reaching the one customer
    assert await figures(stack, "scarf_video") == (2, 1, [])


async def test_a_library_materials_video_goes_out_in_a_moment(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    library = library_copy(tmp_path, {
        "media/scarf.mp4": MP4, "materials/scarf_video.toml": VIDEO_MATERIAL,
        "drops/video_moment.toml": MOMENT_DROP.format(id="video_moment",
                                                      material="scarf_video")})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    try:
        await fire(stack, DROP_AT + timedelta(minutes=5))
        [moment] = stack.calls("externalcontact/add_moment_task")
        assert moment["errcode"] == 0, moment
        assert moment["body"]["text"]["content"] == "三十秒学会燕麦围巾的系法"
        assert len(moment["body"]["attachments"]) == 1
        video_of(stack, moment["body"]["attachments"])
    finally:
        await stack.http.close()
