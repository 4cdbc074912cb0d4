"""Failed sign-ins throttled per (scope, client address): the console's token and WeCom
sign-ins (the scope is the tenant id) and the operator's (the scope is ":operator", never a
tenant id); wrong bearer tokens too (a tenant's admin token on the admin API and console
pages, the operator's on its routes), in the same count: `bearer` below. A request without
a bearer header is not counted.

After `[server] signin_failures` refusals within `[server] signin_window_minutes` of the
first, that address is answered 429 (with Retry-After) on that scope until the window ends,
and its token is not checked at all: a right token is refused too. A sign-in clears the
address's count. The counts live in this process's memory (a restart forgets them), at most
`CAP` of them, the oldest window dropped first.

A right bearer token does not clear the count (a tool sharing an address with a guesser
would otherwise reset it at every call), and bearer refusals write no 操作日志 row.

The address is the connection's peer (`request.remote`), unless `[server] client_ip_header`
names the header a reverse proxy sets (for X-Forwarded-For, its rightmost entry: the one the
proxy appended). Behind a proxy without that setting, every visitor shares the proxy's
address, so failures from anyone throttle everyone.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from guidebot.metrics import Metrics
from guidebot.settings import ServerSettings

CAP = 10_000
OPERATOR = ":operator"  # the operator sign-in's scope (no tenant id has a colon)


@dataclass
class _Window:
    start: float  # the first failure (clock seconds)
    failures: int = 0
    throttled_noted: bool = False  # its one 操作日志 row for the throttling written


@dataclass(frozen=True)
class Held:
    """An address answered 429 on a scope: the whole seconds until it may try again; `first`
    for the first such answer of the window (the one worth a 操作日志 row)."""

    retry_after: int
    first: bool

    @property
    def minutes(self) -> int:
        return math.ceil(self.retry_after / 60)


class SigninThrottle:
    def __init__(self, server: ServerSettings, metrics: Metrics, *, cap: int = CAP,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = server.signin_failures
        self.window_s = server.signin_window_minutes * 60
        self.header = server.client_ip_header
        self.metrics = metrics
        self.cap = cap
        self.clock = clock  # tests move it instead of sleeping
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()

    def address(self, request: web.Request) -> str:
        return client_address(request, self.header)

    def held(self, request: web.Request, scope: str, *, bearer: bool = False) -> Held | None:
        """None when this address may try to sign in on `scope`; else how long it waits
        (a bearer's 429 is never `first`: the sign-in's 操作日志 row stays the sign-in's)."""
        window = self._current((scope, self.address(request)))
        if window is None or window.failures < self.failures:
            return None
        first = not window.throttled_noted and not bearer
        window.throttled_noted |= first
        self.metrics.signin_refused("bearer_throttled" if bearer else "throttled")
        wait = window.start + self.window_s - self.clock()
        return Held(max(1, math.ceil(wait)), first)

    def bearer(self, request: web.Request, scope: str, right: Callable[[], bool]) -> Held | bool:
        """A request's bearer token on `scope`: Held while the address is throttled (`right`
        is not called), else whether the token is right (a wrong one counted)."""
        if (held := self.held(request, scope, bearer=True)) is not None:
            return held
        if right():
            return True
        self.refused(request, scope, bearer=True)
        return False

    def refused(self, request: web.Request, scope: str, *, bearer: bool = False) -> bool:
        """Count a refused sign-in; True for the first `signin_failures` of the window (the
        ones worth a 操作日志 row: later ones can only come from sign-ins already under way
        when the limit was reached)."""
        self.metrics.signin_refused("bearer_refused" if bearer else "refused")
        key = (scope, self.address(request))
        window = self._current(key)
        if window is None:
            window = self._windows[key] = _Window(self.clock())
            while len(self._windows) > self.cap:
                self._windows.popitem(last=False)
        window.failures += 1
        return window.failures <= self.failures

    def signed_in(self, request: web.Request, scope: str) -> None:
        self._windows.pop((scope, self.address(request)), None)

    def _current(self, key: tuple[str, str]) -> _Window | None:
        """The key's window while it lasts (one that has ended is dropped)."""
        window = self._windows.get(key)
        if window is not None and self.clock() - window.start >= self.window_s:
            del self._windows[key]
            return None
        return window


def client_address(request: web.Request, header: str) -> str:
    """The client's address: the trusted header's (X-Forwarded-For: its rightmost entry)
    when `header` is set and sent, else the connection's peer."""
    if header:
        sent = ",".join(request.headers.getall(header, []))
        entries = [part.strip() for part in sent.split(",") if part.strip()]
        if entries:
            return _counted_as(entries[-1])
    return _counted_as(request.remote or "")


def _counted_as(entry: str) -> str:
    """The key an address is counted under: without the port some proxies append
    ("1.2.3.4:5555", "[2001:db8::1]:443"; else every connection would count apart), an
    IPv6 address as its /64 (one subscriber holds a whole /64), an IPv4-mapped one as its
    IPv4 address; what is not an address, as sent (cut to 64 characters)."""
    text = entry[1:].split("]", 1)[0] if entry.startswith("[") else entry
    if text.count(":") == 1:  # IPv4 with a port (an IPv6 address has several colons)
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return entry[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


SIGNINS = web.AppKey("signin_throttle", SigninThrottle)


def throttle_of(request: web.Request) -> SigninThrottle:
    return request.app[SIGNINS]


def retry_later(response: web.Response, held: Held) -> web.Response:
    """The 429 page `response` with its Retry-After header."""
    response.headers["Retry-After"] = str(held.retry_after)
    return response
