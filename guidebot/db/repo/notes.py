"""跟进记录: a customer's follow-up notes, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Customer, Follow
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


async def open_follow_ups(session: AsyncSession, *, tenant: str, guide: str, day: date,
                          limit: int) -> tuple[int, list[tuple[str, str, date]]]:
    """The guide's follow-ups due by `day` (that day or overdue): customers the guide still
    follows whose latest note by this guide names a follow-up day on or before `day` (a
    newer note without one ends the reminder). How many, and the first `limit` as
    (external_userid, name — "" when unknown, follow-up day), oldest day first."""
    latest = (select(func.max(CustomerNote.id))
              .where(CustomerNote.tenant == tenant, CustomerNote.guide == guide)
              .group_by(CustomerNote.external_userid))
    stmt = (select(CustomerNote.external_userid, Customer.name, CustomerNote.follow_up_on)
            .join(Follow, (Follow.tenant == CustomerNote.tenant)
                  & (Follow.external_userid == CustomerNote.external_userid)
                  & (Follow.guide == CustomerNote.guide) & (Follow.status == "active"))
            .outerjoin(Customer, (Customer.tenant == CustomerNote.tenant)
                       & (Customer.external_userid == CustomerNote.external_userid))
            .where(CustomerNote.id.in_(latest),  # type: ignore[union-attr]
                   CustomerNote.follow_up_on <= day)  # type: ignore[operator]
            .order_by(CustomerNote.follow_up_on, CustomerNote.external_userid))
    found = [(c, n or "", d) for c, n, d in (await session.execute(stmt)).all()]
    return len(found), found[:limit]
