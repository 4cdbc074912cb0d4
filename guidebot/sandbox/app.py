"""The sandbox as an aiohttp application, and `serve` for `guidebot sandbox`."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from guidebot.sandbox import cgi, control
from guidebot.sandbox.accesslog import MaskedAccessLogger
from guidebot.sandbox.sandbox import Sandbox
from guidebot.sandbox.webio import SANDBOX_KEY, json_response
from guidebot.settings import Settings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 21 * 1024 * 1024  # media/upload accepts files up to 20 MB (FACTS §3.9)


def create_sandbox_app(
    settings: Settings, *, callback_base: str | None = None, welcome_window_s: float = 20.0
) -> web.Application:
    """A local double of WeCom for every tenant in `settings`.

    The bot's callback URL for tenant T is f"{callback_base}/wecom/{T}/callback";
    callback_base defaults to settings.server.public_url.
    """
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[SANDBOX_KEY] = Sandbox(
        settings, callback_base=callback_base, welcome_window_s=welcome_window_s)
    cgi.add_routes(app.router)
    control.add_routes(app.router)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    app.on_cleanup.append(_close)
    return app


async def _close(app: web.Application) -> None:
    await app[SANDBOX_KEY].close()


async def _not_found(request: web.Request) -> web.Response:
    return json_response({"errcode": 404, "errmsg": f"no such path {request.path}"}, 404)


async def serve(settings: Settings, host: str, port: int) -> None:
    """Run the sandbox on host:port until cancelled."""
    runner = web.AppRunner(create_sandbox_app(settings), access_log_class=MaskedAccessLogger)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("sandbox listening on http://%s:%d for %d tenant(s)", host, port,
                 len(settings.tenants))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
