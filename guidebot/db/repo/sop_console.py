"""Queries of the SOPs' console: HQ's on/off switches and each step's conversion (customers
sent to, reached as the guide confirmed the 群发, clicks on the step's tracked links, orders
through them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_commerce import Order, Touch, TrackedLink
from guidebot.db.models_sop import SopStep, SopSwitch, SopTask
from guidebot.db.repo._dialect import insert_for
from guidebot.db.repo.sop_plan import SENT_TASKS

SOP_CAMPAIGN = "sop:%"  # tracked links of SOP steps: campaign "sop:<id>:<step>"


async def switched_off(session: AsyncSession, *, tenant: str) -> set[str]:
    stmt = select(SopSwitch.sop_id).where(SopSwitch.tenant == tenant)
    return set((await session.execute(stmt)).scalars())


async def switch(session: AsyncSession, *, tenant: str, sop_id: str, on: bool, operator: str,
                 now: datetime) -> None:
    if on:
        await session.execute(delete(SopSwitch).where(SopSwitch.tenant == tenant,
                                                      SopSwitch.sop_id == sop_id))
        return
    stmt = insert_for(session, SopSwitch).values(tenant=tenant, sop_id=sop_id,
                                                 operator=operator, switched_at=now)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant", "sop_id"]))


def _steps(rows: Iterable[Any], out: dict[tuple[str, int], dict[str, int]],
           names: tuple[str, ...]) -> None:
    for key, index, *values in rows:
        cell = out.setdefault((key, int(index)), {})
        for name, value in zip(names, values, strict=True):
            cell[name] = cell.get(name, 0) + int(value or 0)


async def step_conversion(session: AsyncSession, *,
                          tenant: str) -> dict[tuple[str, int], dict[str, int]]:
    """(sop id, step index) → sent, tasks, confirmed, clicks, clickers, orders, gmv_fen."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    sent = or_(SopStep.status == "sent",
               and_(SopStep.status == "queued",
                    SopTask.status.in_(SENT_TASKS)))  # type: ignore[attr-defined]
    stmt = (select(SopStep.sop_id, SopStep.step_index, func.count())
            .outerjoin(SopTask, SopTask.id == SopStep.task_id)
            .where(SopStep.tenant == tenant, sent)
            .group_by(SopStep.sop_id, SopStep.step_index))
    _steps((await session.execute(stmt)).all(), out, ("sent",))
    source = func.substr(SopTask.source, 5)  # "sop:<id>" → "<id>"
    stmt = (select(source, SopTask.step_index, func.count(), func.sum(SopTask.confirmed))
            .where(SopTask.tenant == tenant,
                   SopTask.kind.in_(("guide_task", "group_task")),  # type: ignore[attr-defined]
                   SopTask.source.like(SOP_CAMPAIGN))  # type: ignore[attr-defined]
            .group_by(source, SopTask.step_index))
    _steps((await session.execute(stmt)).all(), out, ("tasks", "confirmed"))
    links = (select(TrackedLink.token, TrackedLink.campaign)
             .where(TrackedLink.tenant == tenant,
                    TrackedLink.campaign.like(SOP_CAMPAIGN))  # type: ignore[attr-defined]
             .subquery())
    clicks = (select(links.c.campaign, func.count(), func.count(distinct(Touch.external_userid)))
              .join(Touch, and_(Touch.token == links.c.token, Touch.tenant == tenant,
                                Touch.kind != "order"))
              .group_by(links.c.campaign))
    _steps(_by_step((await session.execute(clicks)).all()), out, ("clicks", "clickers"))
    bought = (select(links.c.campaign, func.count(), func.sum(Order.amount_fen))
              .join(Order, and_(Order.tracking == links.c.token, Order.tenant == tenant))
              .group_by(links.c.campaign))
    _steps(_by_step((await session.execute(bought)).all()), out, ("orders", "gmv_fen"))
    return out


def _by_step(rows: Iterable[Any]) -> list[tuple[Any, ...]]:
    """Rows keyed by campaign "sop:<id>:<step>" → (id, step, values...)."""
    found = []
    for campaign, *values in rows:
        sop_id, _, step = str(campaign).removeprefix("sop:").rpartition(":")
        if sop_id and step.isdigit():
            found.append((sop_id, int(step), *values))
    return found
