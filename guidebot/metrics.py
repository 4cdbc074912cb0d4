"""The figures an operator watches, in Prometheus' text format at GET /metrics.

Every app has its own CollectorRegistry (tests and the demo run several apps in one process).
Counters and the histogram are fed as things happen; the inbox and outbox gauges are read
from the database at scrape time (`refresh`), so they are right in every process that shares
the database.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from guidebot.db.engine import Database

SIGNIN_KINDS = ("refused", "throttled", "bearer_refused", "bearer_throttled")
OUTBOX_STATES = ("pending", "sending", "done", "failed", "held", "dead", "expired")
# WeCom accepts a welcome message for 20 s after the add (FACTS §3.4): buckets around that.
WELCOME_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
REFRESH_S = 5.0  # the database figures are read at most this often (a scrape loop costs one)

# No `*_created` series: they double the output and no dashboard here reads them.
disable_created_metrics()


class Metrics:
    """One app's metrics. Labels are bounded: tenants come from the config, `api` from the
    client's own paths, results and states from fixed lists."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # seconds, for REFRESH_S
        self._read_at: float | None = None  # when the database figures were last read
        self._reading = asyncio.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.refreshes = Counter(
            "guidebot_metrics_refreshes_total", "Reads of the inbox and outbox figures from "
            f"the database (at most one per {REFRESH_S:g} s, whatever the scrape rate)",
            registry=r)
        self.callbacks = Counter(
            "guidebot_callbacks_total", "WeCom callbacks by tenant and result "
            "(accepted, duplicate, rejected_<HTTP status>)", ["tenant", "result"], registry=r)
        self.inbox_depth = Gauge(
            "guidebot_inbox_depth", "Inbox rows not processed yet", ["tenant"], registry=r)
        self.inbox_lag = Gauge(
            "guidebot_inbox_lag_seconds", "Age of the oldest unprocessed inbox row (0: none)",
            ["tenant"], registry=r)
        self.outbox = Gauge(
            "guidebot_outbox_rows", "Outbox rows by state", ["tenant", "state"], registry=r)
        self.wecom_calls = Counter(
            "guidebot_wecom_calls_total", "WeCom API calls by api and errcode (0: success, "
            "transport: no answer or not JSON)", ["tenant", "api", "errcode"], registry=r)
        self.welcome_latency = Histogram(
            "guidebot_welcome_latency_seconds", "From the add's callback to the welcome "
            "message sent", ["tenant"], buckets=WELCOME_BUCKETS, registry=r)
        self.orders = Counter(
            "guidebot_orders_received_total", "Order webhook requests by tenant and HTTP status",
            ["tenant", "status"], registry=r)
        self.backups = Counter(
            "guidebot_backups_total", "Scheduled SQLite backups ([server.backup]) by result "
            "(done, failed)", ["result"], registry=r)
        self.last_backup = Gauge(
            "guidebot_backup_last_success_timestamp_seconds", "When the newest scheduled "
            "backup in [server.backup] dir was made (Unix time; 0: none seen yet)", registry=r)
        self.signins = Counter(
            "guidebot_signins_refused_total", "Console and operator sign-ins refused by kind "
            "(refused: a wrong token or a member not listed; throttled: answered 429 after "
            "too many failures; bearer_refused, bearer_throttled: the same for an "
            "Authorization: Bearer token)", ["kind"], registry=r)
        for kind in SIGNIN_KINDS:
            self.signins.labels(kind=kind)
        self.visits_refused = Counter(
            "guidebot_visits_throttled_total", "Visit beacons (GET /t/{token}) answered 429: "
            "over [server] beacon_per_minute from one address", registry=r)

    def callback(self, tenant: str, result: str) -> None:
        self.callbacks.labels(tenant=tenant, result=result).inc()

    def wecom_call(self, tenant: str, api: str, errcode: int | None) -> None:
        code = "transport" if errcode is None else str(errcode)
        self.wecom_calls.labels(tenant=tenant, api=api, errcode=code).inc()

    def observe_welcome(self, tenant: str, seconds: float) -> None:
        """Time from the add (the callback's CreateTime or its arrival) to the welcome sent."""
        self.welcome_latency.labels(tenant=tenant).observe(max(0.0, seconds))

    def order_received(self, tenant: str, status: int) -> None:
        self.orders.labels(tenant=tenant, status=str(status)).inc()

    def signin_refused(self, kind: str) -> None:
        """A sign-in refused ("refused") or answered 429 ("throttled"), a bearer token the
        same ("bearer_refused", "bearer_throttled"); never by address."""
        self.signins.labels(kind=kind).inc()

    async def refresh(self, db: Database, tenants: Iterable[str]) -> None:
        """Read the inbox and outbox figures from the database (called before each scrape),
        at most once per REFRESH_S: in between, a scrape shows the figures last read, and
        scrapes arriving while a read runs wait for it and share it."""
        async with self._reading:
            if self._read_at is not None and self.clock() - self._read_at < REFRESH_S:
                return
            await self._read(db, tenants)
            self._read_at = self.clock()

    async def _read(self, db: Database, tenants: Iterable[str]) -> None:
        from guidebot.db.repo import metrics as repo

        self.refreshes.inc()
        async with db.read() as s:
            backlog = await repo.inbox_backlog(s)
            outbox = await repo.outbox_by_state(s)
        now = datetime.now(UTC)
        # No await from here on: a concurrent scrape never sees half-set gauges.
        for gauge in (self.inbox_depth, self.inbox_lag, self.outbox):
            gauge.clear()
        known = set(tenants) | set(backlog) | {t for t, _ in outbox}
        for tenant in sorted(known):
            depth, oldest = backlog.get(tenant, (0, None))
            self.inbox_depth.labels(tenant=tenant).set(depth)
            lag = (now - oldest).total_seconds() if oldest is not None else 0.0
            self.inbox_lag.labels(tenant=tenant).set(max(0.0, lag))
            states = set(OUTBOX_STATES) | {st for t, st in outbox if t == tenant}
            for state in sorted(states):
                self.outbox.labels(tenant=tenant, state=state).set(outbox.get((tenant, state), 0))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
