"""Ledger writes: earn and clawback entries, manual adjustments, period settlement."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.commerce import periods
from guidebot.commerce.recording import entry_row
from guidebot.db.engine import Database
from guidebot.db.models_commerce import Settlement
from guidebot.db.repo import commerce_ledger as repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo.commerce_driver import ENTRY_COLUMNS
from guidebot.errors import Conflict, NotFound, ValidationFailed
from guidebot.settings import TenantSettings

MAX_ADJUSTMENT_FEN = 100_000_000  # ¥1,000,000: a typo guard, not a business rule


class PeriodSettled(ValidationFailed):
    """The period is already settled (locked)."""


async def append(s: AsyncSession, tenant: TenantSettings, *, key: str, kind: str, guide: str,
                 amount_fen: int, at: datetime, order_no: str | None = None,
                 refund_no: str | None = None, reason: str = "", operator: str = "") -> str:
    """Append one entry in the open period of `at`; returns that period."""
    settled = await repo.settled_periods(s, tenant=tenant.id)
    period = periods.open_period(at, tenant.tz, settled)
    await repo.append(s, values=dict(zip(ENTRY_COLUMNS, entry_row(
        tenant.id, key=key, kind=kind, guide=guide, amount_fen=amount_fen, period=period,
        created_at=at, order_no=order_no, refund_no=refund_no, reason=reason,
        operator=operator), strict=True)))
    return period


class Ledger:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def adjust(self, tenant: TenantSettings, *, guide: str, amount_fen: int, reason: str,
                     operator: str, key: str = "") -> tuple[dict[str, object], bool]:
        """One adjustment entry for a guide of this tenant: (the entry, whether it is new).
        A key already used answers its entry; with another guide, amount, reason or operator
        it is a Conflict (the ledger keeps the first)."""
        if amount_fen == 0 or abs(amount_fen) > MAX_ADJUSTMENT_FEN:
            raise ValidationFailed("amount_fen: a non-zero integer within ±100000000",
                                   code="adjust.amount")
        if not reason.strip() or not operator.strip():
            raise ValidationFailed("reason: reason and operator are both required",
                                   code="adjust.reason")
        entry_key = f"adjustment:{key or uuid.uuid4().hex}"
        wanted = {"key": entry_key, "guide": guide, "amount_fen": amount_fen,
                  "reason": reason[:256], "operator": operator[:64]}
        async with self._db.write() as s:
            await repo.lock_tenant(s, tenant=tenant.id)
            found = await repo.get_entry(s, tenant=tenant.id, key=entry_key)
            if found is not None:
                stored = {**{k: getattr(found, k) for k in wanted}, "period": found.period}
                if any(stored[k] != v for k, v in wanted.items()):
                    raise Conflict(key, stored)
                return stored, False
            if await contacts_repo.get_guide(s, tenant=tenant.id, userid=guide) is None:
                raise NotFound(f"guide: no guide {guide} in this tenant", code="guide.unknown",
                               guide=guide)
            period = await append(s, tenant, key=entry_key, kind="adjustment", guide=guide,
                                  amount_fen=amount_fen, at=self._clock(), reason=reason,
                                  operator=operator)
        return {**wanted, "period": period}, True

    async def settle(self, tenant: TenantSettings, period: str,
                     operator: str) -> dict[str, object]:
        periods.parse(period)
        now = self._clock()
        if period > periods.of(now, tenant.tz):
            raise ValidationFailed(f"period: {period} has not started yet", code="period.future",
                                   period=period)
        async with self._db.write() as s:
            await repo.lock_tenant(s, tenant=tenant.id)
            if await repo.get_settlement(s, tenant=tenant.id, period=period) is not None:
                raise PeriodSettled(f"period {period} is already settled", code="period.settled",
                                    period=period)
            rows = await repo.statement_rows(s, tenant=tenant.id, period=period)
            net = sum(net_of(r) for r in rows)
            await repo.settle(s, settlement=Settlement(tenant=tenant.id, period=period,
                                                       net_fen=net, operator=operator[:64],
                                                       settled_at=now))
        return {"period": period, "settled": True, "net_fen": net, "guides": len(rows)}


def net_of(row: dict[str, int]) -> int:
    return row["earned_fen"] - row["clawback_fen"] + row["adjustment_fen"]
