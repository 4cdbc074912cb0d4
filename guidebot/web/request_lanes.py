"""Which requests do their SQLite work on the event loop's thread.

Outside jobs and bulk work, SQLite statements run inline on the loop's thread
(guidebot/db/inline.py). That suits the hot routes (WeCom's callbacks, store backends' orders
and the order reads they poll, customers' card visits): their statements are short keyed
reads and writes, they come at the rate of events, and someone waits for the answer; on
aiosqlite every statement costs two thread hops, each a turn of a busy loop. The
other routes (the console, the admin API, the sidebar, the guides' pages, /metrics) read
pages and aggregates whose statements can take long on a large database (a scrape's count of
the outbox by state, a year of a leaderboard). Inline, every acknowledgement would wait
behind them. They run on aiosqlite's thread instead, in the urgent lane as before. PostgreSQL
is never inline, so this changes nothing there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web

from guidebot import lanes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def off_the_loop(hot_routes: Collection[str]) -> Any:
    """The middleware (typed Any, as admin_auth): requests to routes other than
    `hot_routes` (canonical paths such as "/wecom/{tenant}/callback") work off the loop."""
    hot = frozenset(hot_routes)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in hot:
            return await handler(request)
        with lanes.running_as(lanes.Lane.NOW, off_loop=True):
            return await handler(request)

    return middleware
