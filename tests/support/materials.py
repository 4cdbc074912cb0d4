"""Guides writing to the app through the sandbox, and reading what the app answered them."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from tests.support.stack import Stack

_ids = itertools.count(1)


def new_msg_id() -> str:
    return str(5_000_000_000 + next(_ids))


async def app_message(stack: Stack, guide: str, *, text: str = "", picture: bytes | None = None,
                      msg_id: str = "", tenant: str = "acme") -> dict[str, Any]:
    """The guide sends the app a text, or a picture; the sandbox calls the bot back (the
    answer's `delivery` must be 200) and the bot handles it before this returns."""
    body: dict[str, Any] = {"userid": guide, "msg_id": msg_id or new_msg_id()}
    if picture is None:
        body.update(msgtype="text", content=text)
    else:
        body.update(msgtype="image", image_base64=base64.b64encode(picture).decode())
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/{tenant}/simulate/app_message",
                               json=body) as resp:
        answer: dict[str, Any] = await resp.json()
    assert resp.status == 200, answer
    assert answer["delivery"]["status"] == 200, answer
    await stack.runtime.drain()
    return answer


def told(stack: Stack, guide: str, tenant: str = "acme") -> list[str]:
    """Every text the app sent this guide, oldest first."""
    return [c["body"]["text"]["content"] for c in stack.calls("message/send", tenant=tenant)
            if c["body"].get("touser") == guide and c["body"].get("msgtype") == "text"
            and c.get("errcode") == 0]
