"""客户资料: the stored values of customers' profile fields, read and set per customer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_profile import CustomerFieldValue
from guidebot.db.repo._dialect import insert_for

CHUNK = 500


async def of_customer(session: AsyncSession, *, tenant: str,
                      external_userid: str) -> list[CustomerFieldValue]:
    """Every stored value of the customer, those of removed fields too."""
    stmt = select(CustomerFieldValue).where(
        CustomerFieldValue.tenant == tenant,  # type: ignore[arg-type]
        CustomerFieldValue.external_userid == external_userid)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def of_customers(session: AsyncSession, *, tenant: str,
                       customers: Sequence[str]) -> dict[str, dict[str, str]]:
    """customer → field → stored text, for these customers (the CSV export's page)."""
    found: dict[str, dict[str, str]] = {}
    unique = sorted(set(customers))
    for start in range(0, len(unique), CHUNK):
        stmt = select(CustomerFieldValue).where(
            CustomerFieldValue.tenant == tenant,  # type: ignore[arg-type]
            CustomerFieldValue.external_userid.in_(  # type: ignore[attr-defined]
                unique[start:start + CHUNK]))
        for row in (await session.execute(stmt)).scalars():
            found.setdefault(row.external_userid, {})[row.field] = row.value
    return found


async def apply(session: AsyncSession, *, tenant: str, external_userid: str,
                values: Mapping[str, str | None], set_by: str, now: datetime) -> None:
    """Set (a text) or clear (None) each named field's value of the customer."""
    cleared = [field for field, value in values.items() if value is None]
    if cleared:
        await session.execute(delete(CustomerFieldValue).where(
            CustomerFieldValue.tenant == tenant,  # type: ignore[arg-type]
            CustomerFieldValue.external_userid == external_userid,  # type: ignore[arg-type]
            CustomerFieldValue.field.in_(cleared)))  # type: ignore[attr-defined]
    rows = [{"tenant": tenant, "external_userid": external_userid, "field": field,
             "value": value, "set_by": set_by, "set_at": now}
            for field, value in values.items() if value is not None]
    if not rows:
        return
    stmt = insert_for(session, CustomerFieldValue.__table__)  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "external_userid", "field"],
        set_={"value": stmt.excluded.value, "set_by": stmt.excluded.set_by,
              "set_at": stmt.excluded.set_at})
    await session.execute(stmt, rows)
