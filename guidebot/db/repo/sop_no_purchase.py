"""Enrolment of a no_purchase SOP (沉睡唤醒 / 新客未转化) for one day, in one statement.

A customer's purchases are the tenant's paid orders credited to them (`commerce_orders` of
the tenant with their external_userid) that are not fully refunded (the refunds applied to an
order add up to less than its amount). The day's customers are found from the orders paid
that day (`ix_commerce_orders_paid`: a range of one day, never the tenant's orders), each
checked for a later purchase by key (`ix_commerce_orders_customer_paid`); "added" finds the
relations begun that day (`ix_follows_added`, migration 0068) and checks the customer's
orders by key the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from guidebot.db.models_commerce import Order, Refund
from guidebot.db.repo import audiences
from guidebot.db.repo.audiences import AudienceFilter
from guidebot.db.repo.sop_bulk import enroll_round, round_taken


def _kept(order: Any) -> Any:
    """The order is not fully refunded: no applied refund, or refunds short of its amount."""
    refunded = (select(func.sum(Refund.amount_fen))
                .where(Refund.tenant == order.tenant, Refund.order_no == order.order_no,
                       Refund.status == "applied").scalar_subquery())
    return func.coalesce(refunded, -1) < order.amount_fen


def _bought(customer: Any, tenant: Any, *, since: datetime | None = None) -> Any:
    """The customer has a purchase (paid at `since` or later, when given)."""
    later = aliased(Order, name="later")
    stmt = select(later.order_no).where(later.tenant == tenant,
                                        later.external_userid == customer, _kept(later))
    if since is not None:
        stmt = stmt.where(later.paid_at >= since)
    return stmt.exists()


def lapsed_since(tenant: str, start: datetime, end: datetime) -> Any:
    """The customers whose last purchase was paid in [start, end): a purchase paid then and
    none since."""
    day = aliased(Order, name="o")
    return (select(day.external_userid)
            .where(day.tenant == tenant, day.paid_at >= start, day.paid_at < end,
                   day.external_userid.is_not(None), _kept(day),  # type: ignore[union-attr]
                   ~_bought(day.external_userid, day.tenant, since=end)))


async def enroll_no_purchase(session: AsyncSession, *, tenant: str, sop_id: str, version: int,
                             since: str, start: datetime, end: datetime, cycle: int,
                             trigger_at: datetime, next_at: datetime | None, now: datetime,
                             audience: AudienceFilter, once: audiences.Once | None) -> int:
    """Enroll for round `cycle` the relations whose `since` moment fell in [start, end) (one
    day of the tenant): "last_order", the customers whose last purchase was paid then;
    "added", the relations begun then whose customer never bought. Their active relations
    (not opted out, in the audience) each, or with `once` each customer once through the
    relation it chooses. A customer (with `once`; else the relation) with an active
    enrollment in this SOP, or one of this round, is left alone; an ended enrollment of an
    earlier round is re-armed. Returns how many were enrolled or re-armed."""
    f = audiences.F
    if since == "added":
        moment = [f.added_at >= start, f.added_at < end, ~_bought(f.external_userid, f.tenant)]
    else:
        moment = [f.external_userid.in_(lapsed_since(tenant, start, end))]
    extra = [*moment, ~round_taken(sop_id, cycle, per_customer=once is not None)]
    rows = audiences.enrollment_rows(
        tenant=tenant, audience=audience, sop_id=sop_id, version=version, first_step=0,
        trigger_at=trigger_at, next_at=next_at, cycle=cycle, now=now, extra=extra, once=once)
    return await enroll_round(session, rows)
