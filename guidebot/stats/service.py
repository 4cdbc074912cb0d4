"""The statistics facade the Services container holds: upkeep, backfill and the figures."""

from __future__ import annotations

from datetime import date
from typing import Any

from guidebot.db.engine import Database
from guidebot.settings import Settings, TenantSettings
from guidebot.stats import overview
from guidebot.stats.daily import DailyStats
from guidebot.stats.records import Records


class StatsService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self.db = db
        self.daily = DailyStats(db, {tid: t.tz for tid, t in settings.tenants.items()})
        self.records = Records(db)

    def tenant(self, tenant_id: str) -> TenantSettings:
        return self._settings.tenant(tenant_id)

    async def upkeep(self) -> int:
        """Every tenant's new rows counted (one pass: ids are shared by all tenants)."""
        return await self.daily.upkeep()

    async def backfill(self, tenant_id: str) -> int:
        return await self.daily.backfill(tenant_id)

    async def overview(self, tenant_id: str, day_from: date, day_to: date) -> dict[str, Any]:
        return await overview.overview(self.db, self.tenant(tenant_id), day_from, day_to)

    async def leaderboard(self, tenant_id: str, day_from: date, day_to: date,
                          key: str) -> list[dict[str, Any]]:
        return await overview.per_key(self.db, self.tenant(tenant_id), day_from, day_to, key)
