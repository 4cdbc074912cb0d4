"""The statistics facade the Services container holds: upkeep, backfill and the figures."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from guidebot.bursts import Arrivals
from guidebot.db.engine import Database
from guidebot.settings import Settings, TenantSettings
from guidebot.stats import overview
from guidebot.stats.daily import DailyStats
from guidebot.stats.records import Records

log = logging.getLogger(__name__)

# During a burst the scheduled upkeep waits, but the figures never fall further behind than
# this (plus one job interval): a burst that never ends still gets its statistics.
MAX_DEFER_S = 300.0


class StatsService:
    def __init__(self, settings: Settings, db: Database, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self.db = db
        self.daily = DailyStats(db, {tid: t.tz for tid, t in settings.tenants.items()})
        self.records = Records(db)
        self.arrivals = Arrivals(clock=clock)  # noted by the callback and order webhooks
        self._clock = clock
        self._last_run = clock()

    def tenant(self, tenant_id: str) -> TenantSettings:
        return self._settings.tenant(tenant_id)

    async def upkeep(self) -> int:
        """Every tenant's new rows counted (one pass: ids are shared by all tenants)."""
        return await self.daily.upkeep()

    async def scheduled_upkeep(self) -> int | None:
        """The job's run: the upkeep, unless events are arriving at burst rates and the last
        run was less than MAX_DEFER_S ago (None: it waited; the rows are counted later)."""
        if self.arrivals.bursting() and self._clock() - self._last_run < MAX_DEFER_S:
            log.info("stats upkeep waits: a burst is arriving (%s events in the last %s s)",
                     self.arrivals.recent(), self.arrivals.window_s)
            return None
        counted = await self.daily.upkeep()
        self._last_run = self._clock()
        return counted

    async def backfill(self, tenant_id: str) -> int:
        return await self.daily.backfill(tenant_id)

    async def overview(self, tenant_id: str, day_from: date, day_to: date) -> dict[str, Any]:
        return await overview.overview(self.db, self.tenant(tenant_id), day_from, day_to)

    async def leaderboard(self, tenant_id: str, day_from: date, day_to: date,
                          key: str, store_id: str | None = None) -> list[dict[str, Any]]:
        return await overview.per_key(self.db, self.tenant(tenant_id), day_from, day_to, key,
                                      store_id)
