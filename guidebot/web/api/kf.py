"""Admin JSON API for 微信客服: a guide's kf link (`POST /api/v1/{t}/kf/links`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from guidebot.errors import ValidationFailed, WeComError
from guidebot.web.keys import SERVICES


def _field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationFailed(f"{key}: required string of at most 64 characters")
    return value


async def post_kf_link(request: web.Request) -> web.Response:
    """{guide, open_kfid} → 201 {url, token, guide, open_kfid}: the guide's 微信客服 link."""
    kf = request.app[SERVICES].kf
    if kf is None:
        return web.json_response({"error": "微信客服 is not wired"}, status=404)
    try:
        try:
            data = await request.json()
        except json.JSONDecodeError:
            raise ValidationFailed("body must be a JSON object") from None
        if not isinstance(data, dict):
            raise ValidationFailed("body must be a JSON object")
        link = await kf.entries.create_link(request.match_info["tenant"], _field(data, "guide"),
                                            _field(data, "open_kfid"))
    except ValidationFailed as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except WeComError as exc:
        return web.json_response({"error": "WeCom refused kf/add_contact_way",
                                  "errcode": exc.errcode}, status=502)
    return web.json_response(link, status=201)


def install(app: web.Application) -> None:
    """The route, and every configured account's cursor created at start."""
    app.add_routes([web.post("/api/v1/{tenant}/kf/links", post_kf_link)])

    async def ensure_cursors(app: web.Application) -> None:
        kf = app[SERVICES].kf
        if kf is not None:
            await kf.ensure_cursors()

    app.on_startup.append(ensure_cursors)
