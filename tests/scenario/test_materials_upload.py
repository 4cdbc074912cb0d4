"""The console's new-material form takes up to 9 pictures of up to 10 MB each: its route has
its own request limit; every other route keeps the app's 1 MiB."""

from __future__ import annotations

import os
import re

import aiohttp

from guidebot.web.pages.console_materials import UPLOAD_BYTES
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
PICTURE = 600 * 1024  # three of them make a form of about 1.8 MiB


async def test_a_multi_picture_form_over_1_mib_makes_a_material(stack: Stack) -> None:
    assert UPLOAD_BYTES >= 9 * 10 * 1024 * 1024
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/materials")
        assert status == 200
        approved = _count(html, "approved")
        form = aiohttp.FormData()
        form.add_field("_csrf", csrf_in(html))
        form.add_field("title", "三张大图")
        form.add_field("text", "新款大衣三色")
        form.add_field("grade", "A")
        pictures = [PNG_HEAD + os.urandom(PICTURE) for _ in range(3)]
        for n, data in enumerate(pictures):
            form.add_field("picture", data, filename=f"p{n}.png", content_type="image/png")
        async with console.http.post(console.url("/console/acme/materials/new"), data=form,
                                     allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            location = resp.headers["Location"]
        assert "created=" in location and "refused=0" in location, location
        made = location.split("created=")[1].split("&")[0]
        status, body = await stack.admin(f"/materials/{made}")
        assert status == 200, body
        material = body["material"]
        assert (material["status"], material["grade"]) == ("approved", "A"), material
        _, html, _ = await console.get("/console/acme/materials?status=approved")
        assert _count(html, "approved") == approved + 1  # the tabs count per status
        assert _count(html, "pending") == 0
        assert len(material["pictures"]) == 3, material
        # the stored pictures are the uploaded bytes
        for name in material["pictures"]:
            async with console.http.get(console.url(
                    f"/console/acme/materials/pictures/{name}")) as resp:
                assert resp.status == 200 and await resp.read() in pictures

        # another console form over 1 MiB is still refused
        status, _, _ = await console.post("/console/acme/materials/review", {
            "_csrf": csrf_in(html), "action": "withdraw", "id": made,
            "reason": "x" * (1024 * 1024 + 10)})
        assert status == 413
        status, body = await stack.admin(f"/materials/{made}")
        assert body["material"]["status"] == "approved"
    finally:
        await console.close()


async def test_the_admin_api_still_refuses_a_body_over_1_mib(stack: Stack) -> None:
    status, body = await stack.admin("/materials", method="POST", json={
        "title": "太长", "text": "x" * (1024 * 1024 + 10), "grade": "B"})
    assert status == 413, body


def _count(html: str, status: str) -> int:
    found = re.search(rf'<span data-count="{status}">\((\d+)\)</span>', html)
    assert found, status
    return int(found.group(1))
