"""The visit beacon (GET /t/{token}) limited per client address: at most `[server]
beacon_per_minute` visits an address a minute (fixed windows of this process's clock); beyond
that the beacon answers 429 and writes nothing, so whoever holds a card's token cannot flood
its statistics (nor, on SQLite, the event loop with writes). 0, the default, turns the limit
off: behind a reverse proxy without `client_ip_header` every visitor has the proxy's address,
and a limit on by default would drop a campaign's real visits.

The counts live in this process's memory, for the current minute only (a new minute starts
them afresh), at most `CAP` addresses, the oldest dropped first. The address is found as for
failed sign-ins (guidebot/web/signin_throttle.py: `[server] client_ip_header`). It is a hot
route: a visit costs a dict lookup and an increment.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from guidebot.settings import ServerSettings
from guidebot.web.signin_throttle import client_address

CAP = 50_000
MINUTE_S = 60


class VisitLimit:
    def __init__(self, server: ServerSettings, *, cap: int = CAP,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = server.beacon_per_minute
        self.header = server.client_ip_header
        self.cap = cap
        self.clock = clock  # tests move it instead of sleeping
        self._minute = -1
        self._counts: OrderedDict[str, int] = OrderedDict()

    def over(self, request: web.Request) -> int:
        """Count this visit: 0 when it may be recorded, else the seconds until the next
        minute (the visit is not counted either)."""
        if not self.per_minute:
            return 0
        now = self.clock()
        minute = int(now // MINUTE_S)
        if minute != self._minute:
            self._minute, self._counts = minute, OrderedDict()
        address = client_address(request, self.header)
        seen = self._counts.get(address, 0)
        if seen >= self.per_minute:
            return max(1, math.ceil((minute + 1) * MINUTE_S - now))
        if not seen and len(self._counts) >= self.cap:
            self._counts.popitem(last=False)
        self._counts[address] = seen + 1
        return 0


VISITS = web.AppKey("visit_limit", VisitLimit)
