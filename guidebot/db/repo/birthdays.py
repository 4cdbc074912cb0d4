"""Customers' birthdays: set, cleared and read one at a time or in bulk (生日关怀)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Customer
from guidebot.db.models_birthdays import CustomerBirthday
from guidebot.db.repo._dialect import insert_for

CHUNK = 500


async def get(session: AsyncSession, *, tenant: str,
              external_userid: str) -> CustomerBirthday | None:
    return await session.get(CustomerBirthday, (tenant, external_userid))


async def store(session: AsyncSession, *, tenant: str, rows: Sequence[dict[str, Any]],
                now: datetime) -> None:
    """Set birthdays: {external_userid, month, day, year} each (a customer's row replaced)."""
    table = CustomerBirthday.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), CHUNK):
        part = [{"tenant": tenant, "updated_at": now, **r} for r in rows[start:start + CHUNK]]
        stmt = insert_for(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant", "external_userid"],
            set_={"month": stmt.excluded.month, "day": stmt.excluded.day,
                  "year": stmt.excluded.year, "updated_at": stmt.excluded.updated_at})
        await session.execute(stmt, part)


async def clear(session: AsyncSession, *, tenant: str, customers: Sequence[str]) -> None:
    """Forget these customers' birthdays."""
    for start in range(0, len(customers), CHUNK):
        await session.execute(delete(CustomerBirthday).where(
            CustomerBirthday.tenant == tenant,  # type: ignore[arg-type]
            CustomerBirthday.external_userid.in_(  # type: ignore[attr-defined]
                list(customers[start:start + CHUNK]))))


async def known_customers(session: AsyncSession, *, tenant: str,
                          customers: Sequence[str]) -> set[str]:
    """Which of these external_userids are customers of the tenant."""
    found: set[str] = set()
    unique = sorted(set(customers))
    for start in range(0, len(unique), CHUNK):
        stmt = select(Customer.external_userid).where(
            Customer.tenant == tenant,
            Customer.external_userid.in_(unique[start:start + CHUNK]))  # type: ignore[attr-defined]
        found.update((await session.execute(stmt)).scalars())
    return found
