"""Running the app on a TCP port until interrupted."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys

from aiohttp import web

from guidebot.app import create_app
from guidebot.settings import Settings

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005


def bound_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (0: a free port), so the port is known before the app that
    will serve it is built (its links must name it); `start_on` serves the app on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"{host}:{port}: {exc.strerror}") from exc
    return sock


async def start_on(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner


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
