"""Picture files under content_library replaced in a running app, over HTTP: the hot reload
notices a picture a material or a message names replaced under the same name (even with the
old size and modification time, as `cp -p` leaves it), the next send uploads the new file with
media/upload and carries its new media id; a replaced picture that is not one is listed with
file:line. A card or material naming a sku the catalog does not have is refused the same way
until catalog.toml has it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.library_edits import edit
from tests.support.library_edits import library_errors as _library_errors
from tests.support.library_edits import reload as _reload
from tests.support.stack import Stack, library_copy, start_stack

MATERIAL = "scarf_oat_styling"  # the shipped material, its picture and the scarf's card
PICTURE = "materials/pictures/scarf_oat.png"
SERUM = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
WELCOME = '''text = "您好，我是{{ guide.name }}"

[[attachments]]
type = "miniprogram"
title = "修护精华液 30ml"
appid = "wxbrandstore0001"
pic_file = "media/serum.png"
page = "pages/goods/detail.html?id=1002"
sku = "SKU-SERUM-02"
'''


@pytest.fixture
async def media_stack(aiohttp_server: Any, tmp_path: Path, db_url: str) -> Any:
    library = library_copy(tmp_path, {"media/serum.png": SERUM,
                                      "messages/welcome_pic.toml": WELCOME})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield stack, library
    await stack.http.close()


def _replace_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    stat = path.stat()
    assert len(data) == stat.st_size and data != path.read_bytes()
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _other_png(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def _uploaded(stack: Stack, media_id: str) -> bytes:
    """What the tenant uploaded under `media_id`."""
    return stack.sandbox.tenant("acme").media[media_id].data


async def _use(stack: Stack, key: str) -> tuple[str, str]:
    """The guide sends the material: (the picture's media id, the card's picture's)."""
    status, used = await stack.admin(f"/materials/{MATERIAL}/uses", method="POST", json={
        "guide": "lina", "channel": "send", "key": key})
    assert status == 201, used
    kinds = {a["msgtype"]: a[a["msgtype"]] for a in used["attachments"]}
    return kinds["image"]["media_id"], kinds["miniprogram"]["pic_media_id"]


async def _welcome_picture(stack: Stack, config_id: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", config_id=config_id)
    assert added["delivery"]["status"] == 200
    await stack.runtime.drain()
    welcome = stack.calls("externalcontact/send_welcome_msg")[-1]
    assert welcome["errcode"] == 0  # the sandbox takes only live media ids of this tenant
    [card] = [a["miniprogram"] for a in welcome["body"]["attachments"]
              if a["msgtype"] == "miniprogram"]
    return str(card["pic_media_id"])


async def test_a_materials_picture_replaced_under_the_same_name_is_uploaded_at_the_next_send(
        media_stack: tuple[Stack, Path]) -> None:
    stack, library = media_stack
    picture = library / PICTURE
    old = picture.read_bytes()
    first, card = await _use(stack, "use-1")
    assert first == card and _uploaded(stack, first) == old
    assert len(stack.calls("media/upload")) == 1

    new = _other_png(old)
    _replace_keeping_size_and_mtime(picture, new)  # as `cp -p` of a new picture leaves it
    await _reload(stack)
    assert await _library_errors(stack) == []
    second, card = await _use(stack, "use-2")
    assert second == card and second != first
    assert _uploaded(stack, second) == new
    assert len(stack.calls("media/upload")) == 2
    assert await _use(stack, "use-3") == (second, second)  # reused while young
    assert len(stack.calls("media/upload")) == 2


async def test_a_messages_picture_replaced_is_checked_and_the_good_one_uploaded(
        media_stack: tuple[Stack, Path]) -> None:
    stack, library = media_stack
    _, code = await stack.admin("/channels", method="POST",
                                json={"guide": "lina", "welcome_message": "welcome_pic"})
    first = await _welcome_picture(stack, code["config_id"])
    assert _uploaded(stack, first) == SERUM

    serum = library / "media" / "serum.png"
    _replace_keeping_size_and_mtime(serum, b"GIF89a" + bytes(len(SERUM) - 6))
    await _reload(stack)
    line = WELCOME.splitlines().index('pic_file = "media/serum.png"') + 1
    assert [(e["file"], e["line"], e["message"]) for e in await _library_errors(stack)] == [
        ("messages/welcome_pic.toml", line,
         "miniprogram attachment: pic_file 'media/serum.png' is not a JPG or PNG")]

    _replace_keeping_size_and_mtime(serum, _other_png(SERUM))  # HQ puts a good one there
    await _reload(stack)
    assert await _library_errors(stack) == []
    second = await _welcome_picture(stack, code["config_id"])
    assert second != first and _uploaded(stack, second) == _other_png(SERUM)


async def test_a_card_or_material_naming_a_sku_not_in_the_catalog_waits_for_the_catalog(
        media_stack: tuple[Stack, Path]) -> None:
    stack, library = media_stack
    edit(library / "messages" / "welcome_pic.toml", '"SKU-SERUM-02"', '"SKU-SERUM-50ML"')
    scarf = library / "materials" / f"{MATERIAL}.toml"
    edit(scarf, 'skus = ["SKU-SCARF-03"]', 'skus = ["SKU-SCARF-03", "SKU-SCARF-GREY"]')
    await _reload(stack)
    message_line = WELCOME.splitlines().index('sku = "SKU-SERUM-02"') + 1
    material_line = scarf.read_text(encoding="utf-8").splitlines().index(
        'skus = ["SKU-SCARF-03", "SKU-SCARF-GREY"]') + 1
    assert sorted((e["file"], e["line"], e["message"]) for e in await _library_errors(stack)) \
        == [(f"materials/{MATERIAL}.toml", material_line,
             "skus: 'SKU-SCARF-GREY' is not in catalog.toml"),
            ("messages/welcome_pic.toml", message_line,
             "miniprogram attachment: sku 'SKU-SERUM-50ML' is not in catalog.toml")]
    status, found = await stack.admin(f"/materials/{MATERIAL}")
    assert status == 200 and found["material"]["skus"] == ["SKU-SCARF-03"]  # still in force
    library_in_force = stack.runtime.services.library
    assert library_in_force.messages["welcome_pic"].attachments[0]["sku"] == "SKU-SERUM-02"

    # HQ adds both products to the catalog: everything applies
    catalog = library / "catalog.toml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + "".join(
        f'\n[[products]]\nsku = "{sku}"\nname = "{name}"\ncategory = "{category}"\n'
        for sku, name, category in (("SKU-SERUM-50ML", "修护精华液 50ml", "beauty"),
                                    ("SKU-SCARF-GREY", "羊绒围巾 灰色", "accessories"))),
        encoding="utf-8")
    await _reload(stack)
    assert await _library_errors(stack) == []
    status, found = await stack.admin(f"/materials/{MATERIAL}")
    assert found["material"]["skus"] == ["SKU-SCARF-03", "SKU-SCARF-GREY"]
    assert library_in_force.messages["welcome_pic"].attachments[0]["sku"] == "SKU-SERUM-50ML"
