"""Contributors' points: an append-only ledger (like the commission ledger) of `use` entries,
one per using guide, material and day, and HQ `adjustment`s; the monthly leaderboard; the
export; and the webhook that hands every entry to the store's backend, once.

Every use entry's key is use:<material>:<using guide>:<day>, so a replayed callback, a
repeated API call or a second process can never count a use twice: the key is unique.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.commerce import periods
from guidebot.commerce.signature import HEADER, sign
from guidebot.db.engine import Database
from guidebot.db.models_materials import Material, MaterialUse, PointsEntry
from guidebot.db.repo import materials as repo
from guidebot.db.types import utcnow
from guidebot.errors import Conflict, ValidationFailed
from guidebot.settings import Settings, TenantSettings

log = logging.getLogger(__name__)

WEBHOOK_BATCH = 200
WEBHOOK_TIMEOUT_S = 10.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_ADJUSTMENT = 1_000_000


def entry_json(entry: PointsEntry) -> dict[str, Any]:
    return {"id": entry.id, "tenant": entry.tenant, "key": entry.key, "kind": entry.kind,
            "guide": entry.guide, "points": entry.points, "material_id": entry.material_id,
            "grade": entry.grade, "user": entry.user, "period": entry.period,
            "reason": entry.reason, "operator": entry.operator,
            "created_at": entry.created_at.isoformat()}


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and answer the HTTP status (0 when nothing answered)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310 - configured http(s) URL
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


class Points:
    def __init__(self, settings: Settings, db: Database,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings, self.db, self.clock = settings, db, clock

    async def earn(self, session: AsyncSession, tenant: TenantSettings, material: Material,
                   use: MaterialUse) -> int:
        """In the use's transaction: the contributor's points for a use by another guide,
        unless this guide used this material today already. Returns the points earned."""
        if not material.contributor or material.contributor == use.guide or not material.grade:
            return 0
        points = tenant.materials.points[material.grade]
        added = await repo.append_points(session, values={
            "tenant": tenant.id, "key": f"use:{material.id}:{use.guide}:{use.day}",
            "kind": "use", "guide": material.contributor, "points": points,
            "material_id": material.id, "grade": material.grade, "user": use.guide,
            "period": periods.of(use.at, tenant.tz), "created_at": use.at})
        return points if added else 0

    async def adjust(self, tenant_id: str, *, guide: str, points: int, reason: str,
                     operator: str, key: str) -> dict[str, Any]:
        """HQ adds or takes points; the same key again adds nothing (answers the entry)."""
        if not points or abs(points) > MAX_ADJUSTMENT:
            raise ValidationFailed(f"points: a non-zero integer within ±{MAX_ADJUSTMENT}")
        tenant = self.settings.tenant(tenant_id)
        now = self.clock()
        full_key = f"adjust:{key}"
        async with self.db.write() as s:
            added = await repo.append_points(s, values={
                "tenant": tenant_id, "key": full_key, "kind": "adjustment", "guide": guide,
                "points": points, "reason": reason, "operator": operator,
                "period": periods.of(now, tenant.tz), "created_at": now})
        async with self.db.read() as s:
            entry = await repo.points_entry(s, tenant=tenant_id, key=full_key)
        assert entry is not None
        if not added and (entry.guide, entry.points, entry.reason) != (guide, points, reason):
            raise Conflict(key, entry_json(entry))
        return {"created": added, "entry": entry_json(entry)}

    async def leaderboard(self, tenant_id: str, period: str) -> dict[str, Any]:
        periods.parse(period)
        async with self.db.read() as s:
            rows = await repo.leaderboard(s, tenant=tenant_id, period=period)
        return {"period": period, "guides": [
            {"rank": n, "guide": g, "points": p, "uses": u}
            for n, (g, p, u) in enumerate(rows, start=1)]}

    async def entries(self, tenant_id: str, period: str) -> list[dict[str, Any]]:
        periods.parse(period)
        async with self.db.read() as s:
            rows = await repo.points_entries(s, tenant=tenant_id, period=period)
        return [entry_json(e) for e in rows]

    async def push(self, tenant_id: str) -> dict[str, int]:
        """Deliver every entry the webhook has not acknowledged yet (2xx), oldest first,
        stopping at the first failure (tried again next time). Each POST carries the entry's
        id as Idempotency-Key and the HMAC-SHA256 of the body in X-Guidebot-Signature."""
        config = self.settings.tenant(tenant_id).materials
        if not config.webhook_url:
            return {"delivered": 0, "failed": 0}
        async with self.db.read() as s:
            pending = await repo.undelivered(s, tenant=tenant_id, limit=WEBHOOK_BATCH)
        delivered = 0
        for entry in pending:
            body = json.dumps(entry_json(entry), ensure_ascii=False, sort_keys=True).encode()
            headers = {"Content-Type": "application/json; charset=utf-8",
                       HEADER: sign(config.webhook_secret, body),
                       IDEMPOTENCY_HEADER: f"points:{tenant_id}:{entry.id}"}
            status = await asyncio.to_thread(_post, config.webhook_url, body, headers)
            if not 200 <= status < 300:
                log.warning("points webhook tenant=%s entry=%s answered %s; retried later",
                            tenant_id, entry.id, status or "nothing")
                return {"delivered": delivered, "failed": 1}
            assert entry.id is not None
            async with self.db.write() as s:
                await repo.mark_delivered(s, tenant=tenant_id, entry_id=entry.id,
                                          status=status, at=self.clock())
            delivered += 1
        if delivered:
            log.info("points webhook tenant=%s delivered=%s", tenant_id, delivered)
        return {"delivered": delivered, "failed": 0}
