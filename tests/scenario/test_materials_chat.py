"""Guides contributing materials from the app chat, over real encrypted callbacks from the
sandbox: pictures then a text (or 投稿 <text>) make one submission, pictures are fetched
with media/get and kept by guidebot, replays change nothing, and `素材` finds approved ones."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from guidebot.db.repo import materials as repo
from guidebot.events import AppImageMessage
from guidebot.wecom.parse import parse_event
from tests.support.materials import app_message, told
from tests.support.stack import Stack

DATA = Path(__file__).resolve().parents[1] / "data" / "materials"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGM4sWUaEDFAKAA6zghJM/tZRwAAAABJRU5ErkJggg==")
JPG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(range(200)) + b"\xff\xd9"
GIF = b"GIF89a" + bytes(64)


def test_an_image_message_parses_to_its_event() -> None:
    event = parse_event("acme", (DATA / "app_image_message.xml").read_text())
    assert isinstance(event, AppImageMessage)
    assert (event.userid, event.media_id, event.msg_id) == ("lina", "MEDIA-ID-1",
                                                            "1234567890123456")
    assert event.pic_url.startswith("http://")


async def _pending(stack: Stack, tenant: str = "acme") -> list[dict]:  # type: ignore[type-arg]
    status, body = await stack.admin("/materials", tenant=tenant)
    assert status == 200, body
    return list(body["materials"])


async def test_pictures_then_text_make_one_submission_and_replays_change_nothing(
        stack: Stack) -> None:
    first = await app_message(stack, "lina", picture=PNG)
    second = await app_message(stack, "lina", picture=JPG)
    refused = await app_message(stack, "lina", picture=GIF)
    assert told(stack, "lina") == []  # pictures alone are not answered
    text = await app_message(stack, "lina", text="燕麦色围巾配大衣，通勤显气质")

    [material] = await _pending(stack)
    assert (material["source"], material["contributor"], material["status"]) == (
        "guide", "lina", "pending")
    assert material["text"] == "燕麦色围巾配大衣，通勤显气质"
    store = stack.settings.data_dir / "materials" / "acme"
    kept = [(store / name).read_bytes() for name in material["pictures"]]
    assert kept == [PNG, JPG]  # in the order sent; the GIF was refused
    assert material["history"] == {"pending": 1}
    [receipt] = told(stack, "lina")
    assert "2 张图片" in receipt and "1 张图片未能保存" in receipt
    gets = stack.calls("media/get")
    assert sorted(c["query"]["media_id"] for c in gets) == sorted(
        m["media_id"] for m in (first, second, refused))

    # WeCom retries: the same messages again make no second picture, submission or receipt
    for answer in (first, second, refused):
        await app_message(stack, "lina", picture=PNG, msg_id=answer["msg_id"])
    await app_message(stack, "lina", text="燕麦色围巾配大衣，通勤显气质",
                      msg_id=text["msg_id"])
    assert len(await _pending(stack)) == 1
    assert len(told(stack, "lina")) == 1
    assert len(stack.calls("media/get")) == 3
    async with stack.runtime.services.db.read() as s:
        pieces = await repo.waiting_pieces(s, tenant="acme", guide="lina",
                                           since=material_created(material))
    assert pieces == []  # all taken by the submission


def material_created(material: dict) -> object:  # type: ignore[type-arg]
    from datetime import datetime, timedelta

    return datetime.fromisoformat(material["created_at"]) - timedelta(hours=1)


async def test_contribute_command_sensitive_words_and_other_texts(stack: Stack) -> None:
    await app_message(stack, "zhaolei", text="投稿 全网最低价的羊绒围巾，加微信领券")
    [material] = await _pending(stack)
    assert material["pictures"] == [] and material["flags"] == ["全网最低", "加微信"]
    assert material["text"] == "全网最低价的羊绒围巾，加微信领券"
    assert "全网最低、加微信" in told(stack, "zhaolei")[-1]

    # a text with no pictures waiting is a guide command, answered by the guide chat
    await app_message(stack, "zhaolei", text="随便说点什么")
    assert "可用指令" in told(stack, "zhaolei")[-1]
    assert len(await _pending(stack)) == 1

    # a guide command after pictures is still a command; the next text takes the pictures
    await app_message(stack, "zhaolei", picture=PNG)
    await app_message(stack, "zhaolei", text="今日任务")
    assert "投稿" not in told(stack, "zhaolei")[-1]
    assert len(await _pending(stack)) == 1
    await app_message(stack, "zhaolei", text="门店新到的围巾")
    assert [len(m["pictures"]) for m in await _pending(stack)] == [0, 1]


async def test_search_finds_approved_materials_only(stack: Stack) -> None:
    await app_message(stack, "lina", text="素材 围巾")
    answer = told(stack, "lina")[-1]
    assert "scarf_oat_styling" in answer and "【A】" in answer  # HQ's library material
    await app_message(stack, "lina", text="投稿 围巾的新系法")  # pending: not found yet
    await app_message(stack, "lina", text="素材 新系法")
    assert "没有找到" in told(stack, "lina")[-1]
    await app_message(stack, "lina", text="素材")  # alone: the newest approved ones
    assert "scarf_oat_styling" in told(stack, "lina")[-1]


async def test_pictures_are_kept_per_tenant(stack: Stack) -> None:
    await app_message(stack, "lina", picture=PNG, tenant="beta")
    await app_message(stack, "lina", text="beta 的投稿", tenant="beta")
    assert await _pending(stack) == []
    [material] = await _pending(stack, "beta")
    name = material["pictures"][0]
    assert name.startswith(hashlib.sha256(PNG).hexdigest()[:40])
    assert (stack.settings.data_dir / "materials" / "beta" / name).read_bytes() == PNG
    status, body = await stack.admin(f"/materials/{material['id']}")
    assert status == 404, body  # acme does not see beta's material


async def test_media_get_serves_the_bytes_for_three_days(stack: Stack) -> None:
    import pytest

    from guidebot.errors import WeComApiError

    sent = await app_message(stack, "lina", picture=JPG, tenant="beta")
    client = stack.runtime.services.client("beta")
    fetched = await client.get_media(sent["media_id"])
    assert (fetched["content"], fetched["content_type"]) == (JPG, "image/jpeg")
    with pytest.raises(WeComApiError) as unknown:
        await client.get_media("no-such-media")
    assert unknown.value.errcode == 40007
    stack.sandbox.advance_clock(3 * 86400 + 1)
    stack.sandbox.revoke_token("beta")  # the advanced clock expired the token too
    with pytest.raises(WeComApiError) as expired:
        await client.get_media(sent["media_id"])
    assert expired.value.errcode == 40007
