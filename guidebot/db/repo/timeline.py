"""Queries for one customer's timeline (客户动态): each source's newest rows, newest first, at
most `limit` of them; the service merges them. Never message text."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import FollowEvent
from guidebot.db.models_commerce import Order, Refund, Touch
from guidebot.db.models_groups import GroupChat, GroupMember
from guidebot.db.models_sop import SopEnrollment, SopStep, SopTask
from guidebot.db.repo.sop_plan import effective_status


async def follow_events(session: AsyncSession, *, tenant: str, external_userid: str,
                        limit: int) -> Sequence[FollowEvent]:
    stmt = (select(FollowEvent).where(FollowEvent.tenant == tenant,
                                      FollowEvent.external_userid == external_userid)
            .order_by(FollowEvent.at.desc(), FollowEvent.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(limit))
    return list((await session.execute(stmt)).scalars())


async def visits(session: AsyncSession, *, tenant: str, external_userid: str,
                 limit: int) -> Sequence[Touch]:
    """The customer's card opens (visits through a tracked link)."""
    stmt = (select(Touch).where(Touch.tenant == tenant, Touch.external_userid == external_userid,
                                Touch.kind == "visit")
            .order_by(Touch.at.desc(), Touch.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(limit))
    return list((await session.execute(stmt)).scalars())


async def orders(session: AsyncSession, *, tenant: str, external_userid: str,
                 limit: int) -> Sequence[Order]:
    stmt = (select(Order).where(Order.tenant == tenant, Order.external_userid == external_userid)
            .order_by(Order.paid_at.desc(), Order.order_no.desc())  # type: ignore[attr-defined]
            .limit(limit))
    return list((await session.execute(stmt)).scalars())


async def refunds(session: AsyncSession, *, tenant: str, external_userid: str,
                  limit: int) -> list[tuple[Refund, Order]]:
    """The refunds of the customer's orders (a refund held before its order arrived is
    nobody's yet), newest first, each with its order."""
    stmt = (select(Refund, Order)
            .join(Order, and_(Order.tenant == Refund.tenant,  # type: ignore[arg-type]
                              Order.order_no == Refund.order_no))
            .where(Order.tenant == tenant, Order.external_userid == external_userid)
            .order_by(Refund.refunded_at.desc(), Refund.refund_no.desc())  # type: ignore[attr-defined]
            .limit(limit))
    return [(r, o) for r, o in (await session.execute(stmt)).all()]


async def sent_steps(session: AsyncSession, *, tenant: str, external_userid: str,
                     limit: int) -> Sequence[SopStep]:
    """The customer's SOP steps whose effective status is sent (a queued step of a sent
    task counts), by when they were due."""
    mine = select(SopEnrollment.id).where(SopEnrollment.tenant == tenant,
                                          SopEnrollment.external_userid == external_userid)
    status = effective_status()
    stmt = (select(SopStep)
            .outerjoin(SopTask, SopTask.id == SopStep.task_id)
            .where(SopStep.enrollment_id.in_(mine),  # type: ignore[attr-defined]
                   status == "sent")
            .order_by(SopStep.due_at.desc(), SopStep.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(limit))
    return list((await session.execute(stmt)).scalars())


async def memberships(session: AsyncSession, *, tenant: str, external_userid: str,
                      limit: int) -> list[tuple[GroupChat, GroupMember]]:
    """The customer's group memberships with a known join or leave time, the latest change
    (their leave, else their join) first: the newest `limit` joins and leaves are among them."""
    latest = func.coalesce(GroupMember.left_at, GroupMember.joined_at)
    stmt = (select(GroupChat, GroupMember)
            .join(GroupMember, and_(GroupMember.tenant == GroupChat.tenant,
                                    GroupMember.chat_id == GroupChat.chat_id))
            .where(GroupMember.tenant == tenant, GroupMember.member_id == external_userid,
                   latest.is_not(None))
            .order_by(latest.desc(), GroupMember.chat_id)
            .limit(limit))
    return [(g, m) for g, m in (await session.execute(stmt)).all()]
