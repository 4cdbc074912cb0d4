"""aiohttp glue: the application key of the Sandbox state object, and JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from guidebot.sandbox.sandbox import Sandbox

SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Chinese text kept readable, as WeCom answers."""
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)
