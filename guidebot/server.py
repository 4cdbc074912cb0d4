"""Running the app on a TCP port until interrupted."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

from aiohttp import web

from guidebot.app import create_app
from guidebot.settings import Settings

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start `app`; returns the runner and the bound port (port 0 picks a free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


async def serve(settings: Settings, *, host: str, port: int) -> None:
    runner, bound = await start(create_app(settings), host, port)
    gc.freeze()  # start-up objects never need collecting: shorter GC pauses under load
    # The database threads hand the GIL back and forth with the loop many times per write;
    # the default 5 ms switch interval made each hand-over a stall for waiting callback acks.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    log.info("guidebot listening on http://%s:%s (callback: /wecom/<tenant>/callback)", host,
             bound)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
