"""Queries of the material centre: materials and versions, chat pictures, uses, points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_commerce import Order, Touch, TrackedLink
from guidebot.db.models_materials import (
    Material,
    MaterialPiece,
    MaterialUse,
    MaterialUseCustomer,
    MaterialVersion,
    PointsDelivery,
    PointsEntry,
)
from guidebot.db.repo._dialect import insert_for

CUSTOMER_ROWS = 500  # rows per insert (4 bound values each: well within SQLite's limit)


async def get(session: AsyncSession, *, tenant: str, material_id: str) -> Material | None:
    return await session.get(Material, (tenant, material_id), populate_existing=True)


async def add(session: AsyncSession, *, material: Material, content: str,
              editor: str) -> bool:
    """Insert a material and its version 1; False (nothing written) when the id exists."""
    stmt = (insert_for(session, Material).values(**material.model_dump())
            .on_conflict_do_nothing(index_elements=["tenant", "id"]))
    if not getattr(await session.execute(stmt), "rowcount", 0):
        return False
    session.add(MaterialVersion(tenant=material.tenant, material_id=material.id, version=1,
                                content=content, editor=editor, created_at=material.created_at))
    return True


async def add_version(session: AsyncSession, *, tenant: str, material_id: str, version: int,
                      values: dict[str, Any], content: str, editor: str,
                      at: datetime) -> bool:
    """The material's content becomes `version` (the one after its current one); False when
    another edit got there first."""
    stmt = (update(Material).where(Material.tenant == tenant, Material.id == material_id,
                                   Material.version == version - 1)
            .values(**values, version=version, updated_at=at))
    if not getattr(await session.execute(stmt), "rowcount", 0):
        return False
    session.add(MaterialVersion(tenant=tenant, material_id=material_id, version=version,
                                content=content, editor=editor, created_at=at))
    return True


async def versions(session: AsyncSession, *, tenant: str,
                   material_id: str) -> list[MaterialVersion]:
    stmt = (select(MaterialVersion).where(MaterialVersion.tenant == tenant,
                                          MaterialVersion.material_id == material_id)
            .order_by(MaterialVersion.version))
    return list((await session.execute(stmt)).scalars())


async def transition(session: AsyncSession, *, tenant: str, material_id: str,
                     allowed: Sequence[str], values: dict[str, Any]) -> bool:
    """Set `values` if the material's status is one of `allowed` (one statement: two
    reviewers at once cannot both succeed); False otherwise."""
    stmt = (update(Material).where(Material.tenant == tenant, Material.id == material_id,
                                   Material.status.in_(list(allowed)))  # type: ignore[attr-defined]
            .values(**values))
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def listing(session: AsyncSession, *, tenant: str, status: str | None,
                  contributor: str | None, limit: int) -> list[Material]:
    """Oldest first (the review queue's order)."""
    stmt = select(Material).where(Material.tenant == tenant)
    if status:
        stmt = stmt.where(Material.status == status)
    if contributor:
        stmt = stmt.where(Material.contributor == contributor)
    stmt = stmt.order_by(Material.created_at, Material.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def status_counts(session: AsyncSession, *, tenant: str) -> dict[str, int]:
    """How many of the tenant's materials are in each status."""
    stmt = (select(Material.status, func.count()).where(Material.tenant == tenant)
            .group_by(Material.status))
    return {status: int(n) for status, n in (await session.execute(stmt)).all()}


async def search_approved(session: AsyncSession, *, tenant: str, keyword: str,
                          limit: int) -> list[Material]:
    """Approved materials whose title, text, skus, categories or occasions contain the
    keyword; best grade first, then newest."""
    pattern = _literal(keyword)
    columns = (Material.title, Material.text, Material.skus, Material.categories,
               Material.occasions)
    stmt = (select(Material)
            .where(Material.tenant == tenant, Material.status == "approved",
                   or_(*(c.like(pattern, escape="\\") for c in columns)))  # type: ignore[attr-defined]
            .order_by(Material.grade, Material.updated_at.desc(), Material.id)  # type: ignore[attr-defined]
            .limit(limit))
    return list((await session.execute(stmt)).scalars())


async def history(session: AsyncSession, *, tenant: str,
                  contributors: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per contributor: how many of their materials are in each status (and each grade)."""
    if not contributors:
        return {}
    stmt = (select(Material.contributor, Material.status, Material.grade, func.count())
            .where(Material.tenant == tenant,
                   Material.contributor.in_(list(contributors)))  # type: ignore[attr-defined]
            .group_by(Material.contributor, Material.status, Material.grade))
    out: dict[str, dict[str, int]] = {c: {} for c in contributors}
    for contributor, status, grade, count in (await session.execute(stmt)).all():
        counts = out[contributor]
        counts[status] = counts.get(status, 0) + count
        if status == "approved" and grade:
            counts[f"grade_{grade}"] = counts.get(f"grade_{grade}", 0) + count
    return out


# -- pictures sent to the app --------------------------------------------------------------

async def get_piece(session: AsyncSession, *, tenant: str, msg_id: str) -> MaterialPiece | None:
    return await session.get(MaterialPiece, (tenant, msg_id), populate_existing=True)


async def add_piece(session: AsyncSession, *, piece: MaterialPiece) -> bool:
    """Record a picture by its MsgId; False when that message was recorded before."""
    stmt = (insert_for(session, MaterialPiece).values(**piece.model_dump())
            .on_conflict_do_nothing(index_elements=["tenant", "msg_id"]))
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def waiting_pieces(session: AsyncSession, *, tenant: str, guide: str,
                         since: datetime) -> list[MaterialPiece]:
    """The guide's pictures received since `since` that no submission took yet, in order."""
    stmt = (select(MaterialPiece)
            .where(MaterialPiece.tenant == tenant, MaterialPiece.guide == guide,
                   MaterialPiece.material_id == "", MaterialPiece.received_at >= since)
            .order_by(MaterialPiece.received_at, MaterialPiece.msg_id))
    return list((await session.execute(stmt)).scalars())


async def claim_pieces(session: AsyncSession, *, tenant: str, msg_ids: Sequence[str],
                       material_id: str) -> None:
    if msg_ids:
        await session.execute(
            update(MaterialPiece).where(MaterialPiece.tenant == tenant,
                                        MaterialPiece.msg_id.in_(list(msg_ids)),  # type: ignore[attr-defined]
                                        MaterialPiece.material_id == "")
            .values(material_id=material_id))


# -- uses and points -----------------------------------------------------------------------

async def add_use(session: AsyncSession, *, use: MaterialUse) -> bool:
    """Record a use once per key; False when the key was used before."""
    values = use.model_dump(exclude={"id"})
    stmt = (insert_for(session, MaterialUse).values(**values)
            .on_conflict_do_nothing(index_elements=["tenant", "key"]))
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def add_use_customers(session: AsyncSession, *, tenant: str, material_id: str,
                            use_key: str, customers: Sequence[str]) -> None:
    """The customers a use reached (one row each; a retry adds nothing new)."""
    rows = [{"tenant": tenant, "use_key": use_key, "customer": c, "material_id": material_id}
            for c in dict.fromkeys(customers) if c]
    for start in range(0, len(rows), CUSTOMER_ROWS):
        stmt = (insert_for(session, MaterialUseCustomer).values(rows[start:start + CUSTOMER_ROWS])
                .on_conflict_do_nothing(index_elements=["tenant", "use_key", "customer"]))
        await session.execute(stmt)


async def append_points(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    """Append one points entry; False when its key exists (never a second entry)."""
    stmt = (insert_for(session, PointsEntry).values(**values)
            .on_conflict_do_nothing(index_elements=["tenant", "key"]))
    return bool(getattr(await session.execute(stmt), "rowcount", 0))


async def points_entry(session: AsyncSession, *, tenant: str, key: str) -> PointsEntry | None:
    stmt = select(PointsEntry).where(PointsEntry.tenant == tenant, PointsEntry.key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def points_entries(session: AsyncSession, *, tenant: str, period: str | None = None,
                         after_id: int = 0, limit: int = 10_000) -> list[PointsEntry]:
    stmt = select(PointsEntry).where(PointsEntry.tenant == tenant, PointsEntry.id > after_id)  # type: ignore[operator]
    if period:
        stmt = stmt.where(PointsEntry.period == period)
    stmt = stmt.order_by(PointsEntry.id).limit(limit)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def leaderboard(session: AsyncSession, *, tenant: str,
                      period: str) -> list[tuple[str, int, int]]:
    """(guide, points, counted uses) for the period, most points first."""
    uses = func.sum(case((PointsEntry.kind == "use", 1), else_=0))
    stmt = (select(PointsEntry.guide, func.sum(PointsEntry.points), uses)
            .where(PointsEntry.tenant == tenant, PointsEntry.period == period)
            .group_by(PointsEntry.guide)
            .order_by(func.sum(PointsEntry.points).desc(), PointsEntry.guide))
    return [(g, int(p or 0), int(u or 0)) for g, p, u in (await session.execute(stmt)).all()]


async def undelivered(session: AsyncSession, *, tenant: str, limit: int) -> list[PointsEntry]:
    delivered = select(PointsDelivery.entry_id).where(PointsDelivery.tenant == tenant)
    stmt = (select(PointsEntry)
            .where(PointsEntry.tenant == tenant,
                   PointsEntry.id.not_in(delivered))  # type: ignore[union-attr]
            .order_by(PointsEntry.id).limit(limit))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def mark_delivered(session: AsyncSession, *, tenant: str, entry_id: int,
                         status: int, at: datetime) -> None:
    stmt = (insert_for(session, PointsDelivery)
            .values(tenant=tenant, entry_id=entry_id, status=status, delivered_at=at)
            .on_conflict_do_nothing(index_elements=["tenant", "entry_id"]))
    await session.execute(stmt)


# -- what a material sold ------------------------------------------------------------------

async def use_figures(session: AsyncSession, *, tenant: str,
                      material_id: str) -> tuple[int, int, list[str]]:
    """(uses, distinct customers reached across all its uses, the senders' card tokens)."""
    where = (MaterialUse.tenant == tenant, MaterialUse.material_id == material_id)
    uses = (await session.execute(select(func.count()).where(*where))).scalar_one()
    customers = (await session.execute(
        select(func.count(func.distinct(MaterialUseCustomer.customer)))
        .where(MaterialUseCustomer.tenant == tenant,
               MaterialUseCustomer.material_id == material_id))).scalar_one()
    return int(uses), int(customers), await campaign_tokens(
        session, tenant=tenant, campaign=f"material:{material_id}")


async def campaign_tokens(session: AsyncSession, *, tenant: str, campaign: str) -> list[str]:
    stmt = select(TrackedLink.token).where(TrackedLink.tenant == tenant,
                                           TrackedLink.campaign == campaign)
    return sorted((await session.execute(stmt)).scalars())


async def card_opens(session: AsyncSession, *, tenant: str, tokens: Sequence[str]) -> int:
    if not tokens:
        return 0
    stmt = select(func.count()).where(Touch.tenant == tenant, Touch.kind != "order",
                                      Touch.token.in_(list(tokens)))  # type: ignore[attr-defined]
    return int((await session.execute(stmt)).scalar_one())


async def attributed_orders(session: AsyncSession, *, tenant: str,
                            tokens: Sequence[str]) -> tuple[int, int]:
    """(orders, GMV in fen) credited through one of these tokens: the order carried it, or
    its share-link evidence names it."""
    if not tokens:
        return 0, 0
    named = [Order.evidence.like(_literal(f'"token":"{t}"'), escape="\\")  # type: ignore[attr-defined]
             for t in tokens]
    stmt = (select(func.count(), func.coalesce(func.sum(Order.amount_fen), 0))
            .where(Order.tenant == tenant,
                   or_(Order.tracking.in_(list(tokens)), *named)))  # type: ignore[attr-defined]
    count, gmv = (await session.execute(stmt)).one()
    return int(count), int(gmv)


def _literal(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (tokens may hold `_`, a LIKE wildcard)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
