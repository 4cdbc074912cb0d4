"""Queries for the mirrored corp tag library and the tags on customers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import CorpTag, CustomerTag
from guidebot.db.repo._dialect import insert_for
from guidebot.db.types import utcnow

MIRRORED = ("name", "group_id", "group_name", "deleted", "tag_order", "group_order")


def _values(tag: CorpTag) -> dict[str, object]:
    return {k: getattr(tag, k) for k in MIRRORED}


async def apply_library(session: AsyncSession, *, tenant: str,
                        tags: Sequence[CorpTag]) -> tuple[int, int, int]:
    """Mirror WeCom's tag list by its differences with the mirror as read in this transaction:
    tags new to it inserted, tags whose name, group, order or deletion changed updated, live
    tags WeCom no longer lists marked deleted (kept, so a segment naming one can name it);
    a row that did not change is not written. A tag that becomes deleted here (no longer
    listed, or listed deleted) comes off every customer in the same transaction, as WeCom
    takes it off them. Returns (added, changed, deleted)."""
    columns = [getattr(CorpTag, k) for k in ("tag_id", *MIRRORED)]
    current = {row[0]: dict(zip(MIRRORED, row[1:], strict=True)) for row in (
        await session.execute(select(*columns).where(CorpTag.tenant == tenant))).all()}
    wanted = {t.tag_id: t for t in tags}
    added = [t for i, t in wanted.items() if i not in current]
    changed = [t for i, t in wanted.items() if i in current and current[i] != _values(t)]
    gone = sorted(i for i, row in current.items() if i not in wanted and not row["deleted"])
    await upsert_tags(session, tenant=tenant, tags=added)
    for tag in changed:
        await session.execute(update(CorpTag).where(
            CorpTag.tenant == tenant, CorpTag.tag_id == tag.tag_id).values(**_values(tag)))
    if gone:
        await session.execute(update(CorpTag).where(
            CorpTag.tenant == tenant, CorpTag.tag_id.in_(gone)).values(deleted=True))  # type: ignore[attr-defined]
    now_deleted = gone + [t.tag_id for t in added + changed
                          if t.deleted and not current.get(t.tag_id, {}).get("deleted")]
    await _off_customers(session, tenant=tenant, tag_ids=now_deleted)
    return len(added), len(changed), len(gone)


async def _off_customers(session: AsyncSession, *, tenant: str, tag_ids: Sequence[str]) -> None:
    """Deleted tags' rows on customers removed (the corp_tags row and the ids that opt-outs
    and pre-tags keep stay)."""
    if tag_ids:
        await session.execute(delete(CustomerTag).where(
            CustomerTag.tenant == tenant, CustomerTag.tag_id.in_(list(tag_ids))))  # type: ignore[attr-defined]


async def upsert_tags(session: AsyncSession, *, tenant: str, tags: Sequence[CorpTag]) -> None:
    """These tags as given (new ones added, known ones replaced), the others left as they are."""
    for tag in tags:
        values = _values(tag)
        stmt = insert_for(session, CorpTag).values(tenant=tenant, tag_id=tag.tag_id, **values)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["tenant", "tag_id"], set_=values))


async def library_with_counts(session: AsyncSession, *,
                              tenant: str) -> list[tuple[CorpTag, int]]:
    """The live tags, each with how many customers carry it (through any guide), groups by
    WeCom's order (larger first, as WeCom lists them) then name, tags likewise."""
    carried = (select(CustomerTag.tag_id, func.count(distinct(CustomerTag.external_userid))
                      .label("n"))
               .where(CustomerTag.tenant == tenant).group_by(CustomerTag.tag_id).subquery())
    stmt = (select(CorpTag, func.coalesce(carried.c.n, 0))
            .outerjoin(carried, carried.c.tag_id == CorpTag.tag_id)
            .where(CorpTag.tenant == tenant, CorpTag.deleted.is_(False))  # type: ignore[attr-defined]
            .order_by(CorpTag.group_order.desc(), CorpTag.group_name,  # type: ignore[attr-defined]
                      CorpTag.group_id, CorpTag.tag_order.desc(), CorpTag.name))  # type: ignore[attr-defined]
    return [(tag, int(n)) for tag, n in (await session.execute(stmt)).all()]


async def live_tags(session: AsyncSession, *, tenant: str, tag_id: str = "",
                    group_id: str = "") -> list[CorpTag]:
    """The live tag with this id, or the live tags of this group."""
    stmt = select(CorpTag).where(CorpTag.tenant == tenant,
                                 CorpTag.deleted.is_(False))  # type: ignore[attr-defined]
    stmt = stmt.where(CorpTag.tag_id == tag_id) if tag_id else stmt.where(
        CorpTag.group_id == group_id)
    return list((await session.execute(stmt)).scalars())


async def edit_tag(session: AsyncSession, *, tenant: str, tag_id: str, name: str | None,
                   order: int | None) -> None:
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = name
    if order is not None:
        values["tag_order"] = order
    if values:
        await session.execute(update(CorpTag).where(
            CorpTag.tenant == tenant, CorpTag.tag_id == tag_id).values(**values))


async def delete_tags(session: AsyncSession, *, tenant: str, tag_ids: Sequence[str]) -> None:
    """Tags deleted in WeCom: marked deleted, and off every customer (WeCom takes them off)."""
    ids = list(tag_ids)
    await session.execute(update(CorpTag).where(
        CorpTag.tenant == tenant, CorpTag.tag_id.in_(ids)).values(deleted=True))  # type: ignore[attr-defined]
    await _off_customers(session, tenant=tenant, tag_ids=ids)


async def list_library(session: AsyncSession, *, tenant: str) -> Sequence[CorpTag]:
    stmt = select(CorpTag).where(CorpTag.tenant == tenant, CorpTag.deleted.is_(False))  # type: ignore[attr-defined]
    return list((await session.execute(stmt)).scalars())


async def add_customer_tags(session: AsyncSession, *, tenant: str, external_userid: str,
                            guide: str, tag_ids: Iterable[str]) -> None:
    for tag_id in tag_ids:
        stmt = insert_for(session, CustomerTag).values(
            tenant=tenant, external_userid=external_userid, guide=guide, tag_id=tag_id,
            added_at=utcnow()).on_conflict_do_nothing()
        await session.execute(stmt)


async def remove_customer_tags(session: AsyncSession, *, tenant: str, external_userid: str,
                               guide: str, tag_ids: Iterable[str]) -> None:
    await session.execute(delete(CustomerTag).where(
        CustomerTag.tenant == tenant, CustomerTag.external_userid == external_userid,
        CustomerTag.guide == guide, CustomerTag.tag_id.in_(list(tag_ids))))  # type: ignore[attr-defined]


async def tag_names(session: AsyncSession, *, tenant: str, tag_ids: Iterable[str]) -> list[str]:
    """The names of these tags (ids the mirror does not know are left out), in id order."""
    ids = list(tag_ids)
    stmt = select(CorpTag.tag_id, CorpTag.name).where(CorpTag.tenant == tenant,
                                                      CorpTag.tag_id.in_(ids))  # type: ignore[attr-defined]
    found = dict((await session.execute(stmt)).all())  # type: ignore[arg-type]
    return [found[i] for i in ids if i in found]


async def customer_tag_names(session: AsyncSession, *, tenant: str,
                             external_userid: str) -> list[str]:
    stmt = (select(CorpTag.name).distinct()
            .join(CustomerTag, (CustomerTag.tenant == CorpTag.tenant)
                  & (CustomerTag.tag_id == CorpTag.tag_id))
            .where(CustomerTag.tenant == tenant, CustomerTag.external_userid == external_userid,
                   CorpTag.deleted.is_(False))  # type: ignore[attr-defined]
            .order_by(CorpTag.name))
    return list((await session.execute(stmt)).scalars())


async def carrying(session: AsyncSession, *, tenant: str, tag_id: str,
                   external_userids: Sequence[str]) -> set[str]:
    """Those of these customers who carry the tag (through any guide)."""
    if not external_userids:
        return set()
    stmt = select(CustomerTag.external_userid).distinct().where(
        CustomerTag.tenant == tenant, CustomerTag.tag_id == tag_id,
        CustomerTag.external_userid.in_(list(external_userids)))  # type: ignore[attr-defined]
    return set((await session.execute(stmt)).scalars())
