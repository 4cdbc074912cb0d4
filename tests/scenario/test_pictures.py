"""Picture files in content_library messages: uploaded with media/upload on first use, reused
while the media id is young, uploaded again before WeCom's 3 days run out; a welcome goes
without a picture that cannot be uploaded, a 群发 task fails (and is retried) instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot.db.types import utcnow
from tests.support.stack import ROOT, Stack, known, library_copy, start_stack

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
JPG = b"\xff\xd8\xff\xe0" + bytes(range(64))
CARD = '''[[attachments]]
type = "miniprogram"
title = "修护精华液 30ml"
appid = "wxbrandstore0001"
pic_file = "media/serum.png"
page = "pages/goods/detail.html?id=1002"
'''
WELCOME = 'text = "您好，我是{{ guide.name }}"\n\n' + CARD + '''
[[attachments]]
type = "image"
file = "media/poster.jpg"
'''
SOP_CARD = 'text = "新品到店，欢迎来看看"\n\n' + CARD
NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near


@pytest.fixture
async def pic_stack(aiohttp_server: Any, tmp_path: Path, db_url: str) -> Any:
    library = library_copy(tmp_path, {
        "media/serum.png": PNG, "media/poster.jpg": JPG, "messages/welcome_pic.toml": WELCOME,
        "messages/sop_card.toml": SOP_CARD,
        "sops/flash_card.toml": ROOT / "tests/data/sop/flash_card.toml"})
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield s
    await s.http.close()


async def _fault(stack: Stack, path: str, errcode: int, times: int) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": errcode, "times": times}) as resp:
        assert resp.status == 200, await resp.text()


async def _welcome(stack: Stack, config_id: str) -> dict[str, Any]:
    added = await stack.sandbox.simulate_add_contact("acme", config_id=config_id)
    assert added["delivery"]["status"] == 200
    await stack.runtime.drain()
    welcome = stack.calls("externalcontact/send_welcome_msg")[-1]
    assert welcome["errcode"] == 0  # the sandbox takes only live media ids of this tenant
    return welcome


def _media_ids(call: dict[str, Any]) -> dict[str, str]:
    out = {}
    for item in call["body"].get("attachments", []):
        kind = item["msgtype"]
        out[kind] = item[kind]["pic_media_id" if kind == "miniprogram" else "media_id"]
        assert "pic_file" not in item[kind] and "file" not in item[kind]
    return out


async def _enroll_two_guides(stack: Stack) -> Any:
    """A customer each for lina and zhaolei in flash_card (its card step is due at NOON+1m)."""
    sop = stack.runtime.services.sop
    sop.clock = lambda: NOON
    for guide in ("lina", "zhaolei"):
        added = await stack.sandbox.simulate_add_contact("acme", userid=guide, deliver=False)
        await known(stack, customers=(added["external_userid"],), guides=(guide,))
        status, body = await stack.admin("/sops/flash_card/enroll", method="POST", json={
            "external_userid": added["external_userid"], "guide": guide})
        assert status == 201, body
    return sop


def _uploaded(stack: Stack) -> dict[str, str]:
    """media id → file name of everything the tenant uploaded."""
    return {m: media.filename for m, media in stack.sandbox.tenant("acme").media.items()}


async def test_a_welcome_uploads_its_pictures_once_and_again_before_they_expire(
        pic_stack: Stack) -> None:
    stack = pic_stack
    _, code = await stack.admin("/channels", method="POST",
                                json={"guide": "lina", "welcome_message": "welcome_pic"})
    first = _media_ids(await _welcome(stack, code["config_id"]))
    uploaded = _uploaded(stack)
    assert {uploaded[first["miniprogram"]], uploaded[first["image"]]} == {"serum.png",
                                                                          "poster.jpg"}
    assert len(stack.calls("media/upload")) == 2

    assert _media_ids(await _welcome(stack, code["config_id"])) == first  # reused
    assert len(stack.calls("media/upload")) == 2

    # three days on, the first ids are dead in WeCom (the sandbox rejects them): new uploads
    media = stack.runtime.services.media
    assert media is not None
    media.clock = lambda: utcnow() + timedelta(days=3, minutes=1)
    stack.sandbox.advance_clock(3 * 86400 + 60)
    later = _media_ids(await _welcome(stack, code["config_id"]))
    # (the token expired with the clock too: one upload is refused with 42001 and retried
    # after the one refresh)
    assert len([c for c in stack.calls("media/upload") if c["errcode"] == 0]) == 4
    assert set(later.values()).isdisjoint(first.values())


async def test_a_welcome_goes_without_a_picture_that_cannot_be_uploaded(
        pic_stack: Stack) -> None:
    stack = pic_stack
    _, code = await stack.admin("/channels", method="POST",
                                json={"guide": "lina", "welcome_message": "welcome_pic"})
    await _fault(stack, "media/upload", 40005, 1)  # the card's picture: refused once
    welcome = await _welcome(stack, code["config_id"])
    assert set(_media_ids(welcome)) == {"image"}
    assert welcome["body"]["text"]["content"].startswith("您好")
    # nothing bad is remembered: the next welcome uploads the card's picture and sends it
    assert set(_media_ids(await _welcome(stack, code["config_id"]))) == {"miniprogram",
                                                                         "image"}


async def test_a_steps_picture_goes_as_a_live_media_id_and_a_failed_upload_fails_the_task(
        pic_stack: Stack) -> None:
    stack = pic_stack
    sop = await _enroll_two_guides(stack)
    await _fault(stack, "media/upload", 40005, 5)  # more than the delivery's tries
    sop.clock = lambda: NOON + timedelta(minutes=2)
    await sop.tick("acme")
    assert stack.calls("externalcontact/add_msg_template") == []  # nothing half-sent
    status, body = await stack.admin("/tasks?status=dead")
    assert status == 200 and body["tasks"], body
    assert all("40005" in t["delivery"]["last_error"] for t in body["tasks"])


async def test_a_steps_picture_is_uploaded_once_for_every_guides_task(pic_stack: Stack) -> None:
    stack = pic_stack
    sop = await _enroll_two_guides(stack)
    sop.clock = lambda: NOON + timedelta(minutes=2)
    await sop.tick("acme")
    sends = stack.calls("externalcontact/add_msg_template")
    assert sorted(c["body"]["sender"] for c in sends) == ["lina", "zhaolei"]
    assert all(c["errcode"] == 0 for c in sends)
    [media_id] = {_media_ids(c)["miniprogram"] for c in sends}
    assert _uploaded(stack)[media_id] == "serum.png"
    assert len(stack.calls("media/upload")) == 1
