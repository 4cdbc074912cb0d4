"""The sidebar's materials routes with a guide's real session (OAuth through the sandbox):
the upload form makes a pending submission (pictures checked), approved materials are listed
and searched, and a use from the sidebar returns the message with the guide's card token and
earns the contributor points. Without a session 401, without CSRF 403."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.scenario.test_materials_chat import GIF, PNG
from tests.support.sidebar import Guide, sign_in
from tests.support.stack import Stack


async def _upload(guide: Guide, text: str, pictures: list[bytes],
                  csrf: str | None = None) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("text", text)
    for n, data in enumerate(pictures):
        form.add_field("picture", data, filename=f"p{n}.png", content_type="image/png")
    headers = {"X-CSRF-Token": guide.csrf if csrf is None else csrf}
    async with guide.http.post(f"{guide.base}/materials", data=form,
                               headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _lina_only(stack: Stack) -> str:
    """A customer only lina follows."""
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="陈思")
    await stack.runtime.drain()
    return str(added["external_userid"])


async def test_upload_list_and_use_from_the_sidebar(stack: Stack) -> None:
    lina = await sign_in(stack, "lina")
    zhao = await sign_in(stack, "zhaolei")
    try:
        status, body = await _upload(lina, "围巾的第四种系法", [PNG, GIF])
        assert status == 201, body
        material = body["material"]
        assert (material["status"], material["contributor"], body["refused"]) == (
            "pending", "lina", 1)
        assert len(material["pictures"]) == 1
        assert (await _upload(lina, "x", [], csrf="wrong"))[0] == 403
        assert (await _upload(lina, "", [GIF]))[0] == 400  # nothing to keep

        status, listed = await zhao.get("/materials")
        assert [m["id"] for m in listed["materials"]] == ["scarf_oat_styling"]  # approved only
        await stack.admin(f"/materials/{material['id']}/approve", method="POST",
                          json={"grade": "B"})
        status, found = await zhao.get("/materials?keyword=第四种")
        assert [m["id"] for m in found["materials"]] == [material["id"]]

        added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
        await stack.runtime.drain()
        customer = str(added["external_userid"])
        # a customer the guide does not follow: 404, as on every sidebar customer route
        for stranger in ("wmNOTFOLLOWED", await _lina_only(stack)):
            status, refused = await zhao.post(f"/materials/{material['id']}/use",
                                              {"external_userid": stranger, "key": "tap-0"})
            assert (status, refused["code"]) == (404, "sidebar.customer_unknown"), refused
        status, stats = await stack.admin(f"/materials/{material['id']}/stats")
        assert (stats["uses"], stats["customers_reached"]) == (0, 0), stats

        status, used = await zhao.post(f"/materials/{material['id']}/use",
                                       {"external_userid": customer, "key": "tap-1"})
        assert status == 201 and used["points"] == 2, used
        assert used["attachments"][0]["msgtype"] == "image"
        assert [m["msgtype"] for m in used["messages"]] == ["text", "image"]  # sendChatMessage
        assert used["messages"][1]["image"]["mediaid"]
        status, again = await zhao.post(f"/materials/{material['id']}/use", {"key": "tap-1"})
        assert status == 200 and again["recorded"] is False
        status, mine = await lina.post(f"/materials/{material['id']}/use", {})
        assert status == 201 and mine["points"] == 0
        status, stats = await stack.admin(f"/materials/{material['id']}/stats")
        assert (stats["uses"], stats["customers_reached"]) == (2, 1), stats
        status, _ = await zhao.post(f"/materials/{material['id']}/use", {}, csrf="")
        assert status == 403
    finally:
        await lina.http.close()
        await zhao.http.close()
    async with stack.http.get(f"{stack.bot_url}/sidebar/acme/materials") as resp:
        assert resp.status == 401
