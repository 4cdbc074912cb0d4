"""SOP steps and drops naming an HQ material (`material = "<id>"`): validated against
content_library/materials/ with file:line, sent as the material's text, pictures and product
card, the card tracked for the sending guide under the material, so its opens and orders
show up in the material's stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.stack import ROOT, Stack, library_copy, start_stack

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
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
    bad = library_copy(tmp_path / "bad", {
        "drops/unknown.toml": drop.replace("scarf_oat_styling", "no_such"),
        "drops/both.toml": drop.replace('material = "', 'message = "welcome_default"\n'
                                        'material = "'),
        "sops/flash.toml": sop.replace('message = "drop_double12_warmup"',
                                       'material = "nope"', 1)})
    with pytest.raises(ContentInvalid) as info:
        load_library(bad)
    lines = [str(p) for p in info.value.problems]
    assert any("unknown.toml:8" in x and "unknown material id 'no_such'" in x for x in lines)
    assert any("both.toml" in x and "not both" in x for x in lines)
    assert any("flash.toml" in x and "unknown material id 'nope'" in x for x in lines)


@pytest.fixture
async def drop_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = library_copy(tmp_path, {"drops/material_drop.toml":
                                      DATA / "material_drop.toml"})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
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
    [sent] = [c["body"] for c in stack.calls("externalcontact/add_msg_template")]
    assert sent["external_userid"] == [customer] and "燕麦色羊绒围巾" in sent["text"]["content"]
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
    assert stats["uses"] == 0  # a drop's send is not a guide's use (no points either)
