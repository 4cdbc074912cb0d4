"""入群欢迎语素材 in the sandbox over HTTP (FACTS-next §C.4): group_welcome_template/add, get,
edit and del, their limits, their media checks and who may change a template."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.unit.test_sandbox import ACME, MP4, PNG, control, get_token, sandbox_with_directory
from tests.unit.test_sandbox_groups import DIRECTORY
from tests.unit.test_sandbox_transfer import api

PATH = "externalcontact/group_welcome_template"
AGENT = ACME["agent_id"]
OTHER_AGENT = AGENT + 1
LINK = {"title": "新品上市", "picurl": "https://example.com/p.png", "desc": "春季新品",
        "url": "https://example.com/new"}


@pytest.fixture
async def sandbox(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await sandbox_with_directory(aiohttp_client, tmp_path, DIRECTORY)


async def add(client: TestClient, **body: Any) -> dict[str, Any]:
    return await api(client, f"{PATH}/add", body)


async def added(client: TestClient, **body: Any) -> str:
    answer = await add(client, **body)
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok"), answer
    return str(answer["template_id"])


async def get(client: TestClient, template_id: str) -> dict[str, Any]:
    return await api(client, f"{PATH}/get", {"template_id": template_id})


async def media_id(client: TestClient, kind: str, data: bytes) -> str:
    """A media/upload over HTTP, as a caller gets its media ids."""
    form = FormData()
    form.add_field("media", data, filename=f"welcome.{kind}")
    query = {"access_token": await get_token(client), "type": kind}
    answer = await (await client.post("/cgi-bin/media/upload", params=query, data=form)).json()
    assert answer["errcode"] == 0, answer
    return str(answer["media_id"])


async def state(client: TestClient) -> list[dict[str, Any]]:
    status, answer = await control(client, "acme/state", method="GET")
    assert status == 200, answer
    return list(answer["group_welcome_templates"])


async def test_templates_are_added_read_edited_and_deleted(sandbox: TestClient) -> None:
    text_only = await added(sandbox, text={"content": "亲爱的%NICKNAME%用户，你好"},
                            agentid=AGENT)
    assert re.fullmatch(r"msg[A-Za-z0-9]+", text_only)
    with_link = await added(sandbox, text={"content": "欢迎入群"}, link=LINK, notify=0)
    assert with_link != text_only
    assert await get(sandbox, text_only) == {
        "errcode": 0, "errmsg": "ok", "text": {"content": "亲爱的%NICKNAME%用户，你好"}}
    assert await get(sandbox, with_link) == {
        "errcode": 0, "errmsg": "ok", "text": {"content": "欢迎入群"}, "link": LINK}
    assert [(t["template_id"], t["notify"], t["agentid"]) for t in await state(sandbox)] == [
        (text_only, 1, AGENT), (with_link, 0, AGENT)]

    image = {"media_id": await media_id(sandbox, "image", PNG)}
    edited = await api(sandbox, f"{PATH}/edit", {"template_id": with_link, "image": image,
                                                 "agentid": AGENT})
    assert (edited["errcode"], edited["errmsg"]) == (0, "ok")
    assert await get(sandbox, with_link) == {"errcode": 0, "errmsg": "ok", "image": image}
    [_, view] = await state(sandbox)
    assert view == {"template_id": with_link, "image": image, "notify": 0, "agentid": AGENT,
                    "create_time": view["create_time"]}

    deleted = await api(sandbox, f"{PATH}/del", {"template_id": with_link, "agentid": AGENT})
    assert (deleted["errcode"], deleted["errmsg"]) == (0, "ok")
    assert (await get(sandbox, with_link))["errcode"] == 40058
    assert (await api(sandbox, f"{PATH}/del", {"template_id": with_link}))["errcode"] == 40058
    assert (await api(sandbox, f"{PATH}/edit", {"template_id": with_link,
                                                "text": {"content": "x"}}))["errcode"] == 40058
    assert (await get(sandbox, ""))["errcode"] == 40058
    assert [t["template_id"] for t in await state(sandbox)] == [text_only]


async def test_a_corp_keeps_at_most_100_templates(sandbox: TestClient) -> None:
    first = [await added(sandbox, text={"content": f"欢迎 {n}"}) for n in range(100)]
    assert len(set(first)) == 100
    full = await add(sandbox, text={"content": "one more"})
    assert full["errcode"] == 41055 and "template_id" not in full
    await api(sandbox, f"{PATH}/del", {"template_id": first[0]})
    assert len(await state(sandbox)) == 99
    await added(sandbox, text={"content": "one more"})


async def test_sizes_kinds_and_notify_are_checked(sandbox: TestClient) -> None:
    await added(sandbox, text={"content": "好" * 1000})  # 3000 bytes
    assert (await add(sandbox, text={"content": "好" * 1000 + "!"}))["errcode"] == 45002
    await added(sandbox, link={**LINK, "title": "a" * 128, "desc": "b" * 512})
    assert (await add(sandbox, link={**LINK, "title": "a" * 129}))["errcode"] == 40058
    assert (await add(sandbox, link={**LINK, "desc": "b" * 513}))["errcode"] == 40058
    assert (await add(sandbox, link={"title": "no url"}))["errcode"] == 40058
    cover = await media_id(sandbox, "image", PNG)
    mini = {"title": "小" * 21, "pic_media_id": cover, "appid": "wx123", "page": "pages/i"}
    await added(sandbox, miniprogram=mini)  # 63 bytes
    assert (await add(sandbox, miniprogram={**mini, "title": "小" * 22}))["errcode"] == 40058
    two_kinds = await add(sandbox, text={"content": "hi"}, link=LINK,
                          image={"media_id": cover})
    assert two_kinds["errcode"] == 40058
    assert (await add(sandbox))["errcode"] == 44004
    assert (await add(sandbox, text={"content": ""}))["errcode"] == 44004
    assert (await add(sandbox, text="hi"))["errcode"] == 40058
    # No media/uploadimg in the sandbox: any http(s) pic_url is taken, nothing else.
    await added(sandbox, image={"pic_url": "https://wework.qpic.cn/wwpic/1.png"})
    assert (await add(sandbox, image={"pic_url": "ftp://x/1.png"}))["errcode"] == 40058
    assert (await add(sandbox, image={}))["errcode"] == 40058
    assert (await add(sandbox, text={"content": "hi"}, notify=2))["errcode"] == 40058
    assert [t["notify"] for t in await state(sandbox)] == [1, 1, 1, 1]


async def test_media_ids_must_be_uploads_of_the_right_type(sandbox: TestClient) -> None:
    image, video = await media_id(sandbox, "image", PNG), await media_id(sandbox, "video", MP4)
    file = await media_id(sandbox, "file", b"%PDF-1.4 price list")
    for body in ({"image": {"media_id": "unknown"}}, {"file": {"media_id": "unknown"}},
                 {"video": {"media_id": "unknown"}}, {"video": {}},
                 {"miniprogram": {"title": "t", "pic_media_id": "unknown", "appid": "wx1",
                                  "page": "p"}}):
        assert (await add(sandbox, **body))["errcode"] == 40007, body
    assert (await add(sandbox, video={"media_id": image}))["errcode"] == 41065
    assert (await add(sandbox, file={"media_id": video}))["errcode"] == 41065
    template_id = await added(sandbox, file={"media_id": file})
    refused = await api(sandbox, f"{PATH}/edit", {"template_id": template_id,
                                                  "image": {"media_id": "unknown"}})
    assert refused["errcode"] == 40007
    assert (await get(sandbox, template_id))["file"] == {"media_id": file}
    await api(sandbox, f"{PATH}/edit", {"template_id": template_id, "video": {"media_id": video}})
    assert (await get(sandbox, template_id))["video"] == {"media_id": video}


async def test_only_the_app_that_added_a_template_changes_it(sandbox: TestClient) -> None:
    assert (await add(sandbox, text={"content": "hi"}, agentid=OTHER_AGENT))["errcode"] == 40056
    assert (await add(sandbox, text={"content": "hi"}, agentid="abc"))["errcode"] == 40056
    template_id = await added(sandbox, text={"content": "hi"}, agentid=str(AGENT))
    for path, body in (("edit", {"text": {"content": "changed"}}), ("del", {})):
        answer = await api(sandbox, f"{PATH}/{path}", {"template_id": template_id,
                                                       "agentid": OTHER_AGENT, **body})
        assert answer["errcode"] == 41058, answer
    assert (await get(sandbox, template_id))["text"] == {"content": "hi"}
    edited = await api(sandbox, f"{PATH}/edit", {"template_id": template_id,
                                                 "text": {"content": "changed"}})
    assert edited["errcode"] == 0
    assert (await get(sandbox, template_id))["text"] == {"content": "changed"}
    deleted = await api(sandbox, f"{PATH}/del", {"template_id": template_id, "agentid": AGENT})
    assert deleted["errcode"] == 0 and await state(sandbox) == []
