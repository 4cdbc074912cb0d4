"""跟进记录: a customer's follow-up notes, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Customer
from guidebot.db.models_notes import CustomerNote


async def add(session: AsyncSession, *, tenant: str, external_userid: str, guide: str,
              text: str, follow_up_on: date | None, now: datetime) -> CustomerNote:
    note = CustomerNote(tenant=tenant, external_userid=external_userid, guide=guide, text=text,
                        follow_up_on=follow_up_on, created_at=now)
    session.add(note)
    await session.flush()
    return note


async def of_customer(session: AsyncSession, *, tenant: str, external_userid: str,
                      limit: int, before: int | None = None) -> Sequence[CustomerNote]:
    """The customer's notes, newest first; `before`: only notes with a smaller id."""
    stmt = select(CustomerNote).where(CustomerNote.tenant == tenant,
                                      CustomerNote.external_userid == external_userid)
    if before is not None:
        stmt = stmt.where(CustomerNote.id < before)  # type: ignore[operator]
    stmt = stmt.order_by(CustomerNote.id.desc()).limit(limit)  # type: ignore[union-attr]
    return list((await session.execute(stmt)).scalars())


async def follow_ups(session: AsyncSession, *, tenant: str, guide: str, day: date,
                     limit: int) -> tuple[int, list[str]]:
    """The customers the guide's notes say to follow up on `day`: how many, and the names
    (the external_userid when unknown) of the first `limit` by name."""
    stmt = (select(CustomerNote.external_userid, Customer.name)
            .outerjoin(Customer, (Customer.tenant == CustomerNote.tenant)
                       & (Customer.external_userid == CustomerNote.external_userid))
            .where(CustomerNote.tenant == tenant, CustomerNote.guide == guide,
                   CustomerNote.follow_up_on == day)
            .distinct())
    found = sorted((name or customer, customer)
                   for customer, name in (await session.execute(stmt)).all())
    return len(found), [name for name, _ in found[:limit]]
