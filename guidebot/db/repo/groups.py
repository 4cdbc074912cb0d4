"""Queries for customer groups (group_chats, group_members, group_customer_changes): store a
group as WeCom described it, mark one dismissed, and read the lists the console and API show
(who is in a group now from group_members; joins and leaves in a range from
group_customer_changes, which keeps each one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Guide
from guidebot.db.models_groups import (
    CUSTOMER,
    HANDED_IN,
    HANDED_OUT,
    JOIN,
    LEAVE,
    MEMBER,
    GroupChat,
    GroupCustomerChange,
    GroupMember,
)


@dataclass(frozen=True)
class Member:
    """One member as groupchat/get lists them."""

    member_id: str
    kind: int
    joined_at: datetime | None
    join_scene: int
    invitor: str
    state: str = ""  # the 加入群聊 way's state they joined through (assumed field), else ""


@dataclass(frozen=True)
class Group:
    """A group as groupchat/get describes it."""

    chat_id: str
    name: str
    owner: str
    created_at: datetime | None
    member_version: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Stored:
    """What storing a group changed: members who joined and who left since last time."""

    joined: tuple[str, ...]
    left: tuple[str, ...]


async def store(session: AsyncSession, *, tenant: str, group: Group, status: int | None,
                at: datetime) -> Stored:
    """Upsert the group and its members: a member no longer listed has left at `at`, one
    listed again has rejoined; the counts follow."""
    row = await session.get(GroupChat, (tenant, group.chat_id))
    if row is None:
        row = GroupChat(tenant=tenant, chat_id=group.chat_id, owner=group.owner)
        session.add(row)
    old_owner = row.owner
    row.name, row.owner, row.member_version = group.name[:128], group.owner, group.member_version
    row.created_at, row.dismissed_at, row.synced_at = group.created_at, None, at
    if status is not None:
        row.status = status
    known = {m.member_id: m for m in (await session.execute(
        select(GroupMember).where(GroupMember.tenant == tenant,
                                  GroupMember.chat_id == group.chat_id))).scalars()}
    listed = {m.member_id: m for m in group.members}
    joined: list[str] = []
    for member_id, member in listed.items():
        mine = known.get(member_id)
        if mine is None:
            session.add(GroupMember(tenant=tenant, chat_id=group.chat_id, member_id=member_id,
                                    kind=member.kind, joined_at=member.joined_at,
                                    join_scene=member.join_scene,
                                    invitor=member.invitor[:64],
                                    join_state=member.state[:30]))
            joined.append(member_id)
        elif mine.left_at is not None:  # back again
            mine.left_at, mine.joined_at = None, member.joined_at
            mine.join_scene, mine.invitor = member.join_scene, member.invitor[:64]
            mine.join_state = member.state[:30]
            joined.append(member_id)
    left = [m.member_id for m in known.values()
            if m.member_id not in listed and m.left_at is None]
    for member_id in left:
        known[member_id].left_at = at
    kinds = {**{k: m.kind for k, m in known.items()}, **{k: m.kind for k, m in listed.items()}}
    changes: list[tuple[str, str, str, datetime]] = [(old_owner, m, LEAVE, at) for m in left]
    if old_owner != group.owner:  # the customers who stay go with the group
        stayed = sorted(m for m in listed if m in known and m not in joined)
        changes += [(old_owner, m, HANDED_OUT, at) for m in stayed]
        changes += [(group.owner, m, HANDED_IN, at) for m in stayed]
    changes += [(group.owner, m, JOIN, listed[m].joined_at or at) for m in joined]
    session.add_all([GroupCustomerChange(tenant=tenant, chat_id=group.chat_id, owner=owner,
                                         external_userid=m, change=change, at=when,
                                         state=listed[m].state[:30] if change == JOIN else "")
                     for owner, m, change, when in changes if kinds[m] == CUSTOMER])
    row.customers = sum(m.kind == CUSTOMER for m in group.members)
    row.staff = sum(m.kind == MEMBER for m in group.members)
    await session.flush()
    return Stored(tuple(sorted(joined)), tuple(sorted(left)))


async def dismiss(session: AsyncSession, *, tenant: str, chat_id: str, at: datetime) -> bool:
    """The group was dismissed: its members all leave at `at`. False: a group never seen."""
    owner = (await session.execute(select(GroupChat.owner).where(
        GroupChat.tenant == tenant, GroupChat.chat_id == chat_id))).scalar_one_or_none()
    staying = (await session.execute(select(GroupMember.member_id).where(
        GroupMember.tenant == tenant, GroupMember.chat_id == chat_id,
        GroupMember.kind == CUSTOMER,
        GroupMember.left_at.is_(None)).order_by(GroupMember.member_id))).scalars()  # type: ignore[union-attr]
    session.add_all([GroupCustomerChange(tenant=tenant, chat_id=chat_id, owner=owner or "",
                                         external_userid=m, change=LEAVE, at=at)
                     for m in staying])
    found = await session.execute(
        update(GroupChat).where(GroupChat.tenant == tenant, GroupChat.chat_id == chat_id,
                                GroupChat.dismissed_at.is_(None))  # type: ignore[union-attr]
        .values(dismissed_at=at, customers=0, staff=0))
    await session.execute(
        update(GroupMember).where(GroupMember.tenant == tenant, GroupMember.chat_id == chat_id,
                                  GroupMember.left_at.is_(None))  # type: ignore[union-attr]
        .values(left_at=at))
    return bool(getattr(found, "rowcount", 0))


async def live_ids(session: AsyncSession, *, tenant: str) -> set[str]:
    stmt = select(GroupChat.chat_id).where(GroupChat.tenant == tenant,
                                           GroupChat.dismissed_at.is_(None))  # type: ignore[union-attr]
    return {str(c) for c in (await session.execute(stmt)).scalars()}


def _changes_in(tenant: str, start: datetime, end: datetime) -> Any:
    """Customers' joins and leaves in [start, end), every one of them: read from
    group_customer_changes by its (tenant, change, at, chat_id) index (group_members keeps
    only a member's last join and leave)."""
    c = GroupCustomerChange
    return (c.tenant == tenant, c.change.in_((JOIN, LEAVE)),  # type: ignore[attr-defined]
            c.at >= start, c.at < end)  # type: ignore[operator]


async def groups(session: AsyncSession, *, tenant: str, start: datetime, end: datetime,
                 owner: str = "", dismissed: bool = False) -> list[dict[str, Any]]:
    """The groups (live ones, or all with `dismissed`), most customers first, each with the
    customers' joins and leaves in [start, end) (a customer who left and came back counts
    each time)."""
    c = GroupCustomerChange
    counted = (select(c.chat_id,
                      func.sum(case((c.change == JOIN, 1), else_=0)).label("joined"),
                      func.sum(case((c.change == LEAVE, 1), else_=0)).label("left"))
               .where(*_changes_in(tenant, start, end)).group_by(c.chat_id).subquery())
    stmt = (select(GroupChat, func.coalesce(counted.c.joined, 0),
                   func.coalesce(counted.c.left, 0))
            .outerjoin(counted, counted.c.chat_id == GroupChat.chat_id)
            .where(GroupChat.tenant == tenant))
    if owner:
        stmt = stmt.where(GroupChat.owner == owner)
    if not dismissed:
        stmt = stmt.where(GroupChat.dismissed_at.is_(None))  # type: ignore[union-attr]
    stmt = stmt.order_by(GroupChat.customers.desc(), GroupChat.chat_id)  # type: ignore[attr-defined]
    return [{"group": g, "joined": int(j), "left": int(q)}
            for g, j, q in (await session.execute(stmt)).all()]


async def totals(session: AsyncSession, *, tenant: str, start: datetime,
                 end: datetime) -> dict[str, int]:
    """Live groups, the distinct customers in them now (group_members), and customers' joins
    and leaves in [start, end) across all groups (group_customer_changes: each one)."""
    live = and_(GroupChat.tenant == tenant, GroupChat.dismissed_at.is_(None))  # type: ignore[union-attr]
    groups_n = (await session.execute(select(func.count()).select_from(GroupChat)
                                      .where(live))).scalar_one()
    customers = (await session.execute(
        select(func.count(func.distinct(GroupMember.member_id))).where(
            GroupMember.tenant == tenant, GroupMember.kind == CUSTOMER,
            GroupMember.left_at.is_(None)))).scalar_one()  # type: ignore[union-attr]
    c = GroupCustomerChange
    counted = {str(change): int(n) for change, n in (await session.execute(
        select(c.change, func.count()).where(*_changes_in(tenant, start, end))
        .group_by(c.change))).all()}
    return {"groups": int(groups_n), "customers": int(customers),
            "joined": counted.get(JOIN, 0), "left": counted.get(LEAVE, 0)}


async def live_per_owner(session: AsyncSession, *, tenant: str) -> dict[str, int]:
    """Per owner: their live groups (group_chats only, by its owner index)."""
    stmt = (select(GroupChat.owner, func.count())
            .where(GroupChat.tenant == tenant,
                   GroupChat.dismissed_at.is_(None))  # type: ignore[union-attr]
            .group_by(GroupChat.owner))
    return {str(o): int(n) for o, n in (await session.execute(stmt)).all()}


async def group(session: AsyncSession, *, tenant: str, chat_id: str) -> GroupChat | None:
    return await session.get(GroupChat, (tenant, chat_id))


async def members(session: AsyncSession, *, tenant: str, chat_id: str) -> list[GroupMember]:
    """Everyone who has been in the group, those still in first, then by when they joined."""
    stmt = (select(GroupMember).where(GroupMember.tenant == tenant,
                                      GroupMember.chat_id == chat_id)
            .order_by(GroupMember.left_at.is_not(None),  # type: ignore[union-attr]
                      GroupMember.joined_at, GroupMember.member_id))
    return list((await session.execute(stmt)).scalars())


async def of_member(session: AsyncSession, *, tenant: str,
                    member_id: str) -> list[tuple[GroupChat, GroupMember]]:
    """The groups a customer (or member) is or was in, newest join first."""
    stmt = (select(GroupChat, GroupMember)
            .join(GroupMember, and_(GroupMember.tenant == GroupChat.tenant,
                                    GroupMember.chat_id == GroupChat.chat_id))
            .where(GroupMember.tenant == tenant, GroupMember.member_id == member_id)
            .order_by(GroupMember.joined_at.desc()))  # type: ignore[union-attr]
    return [(g, m) for g, m in (await session.execute(stmt)).all()]


async def set_status(session: AsyncSession, *, tenant: str, chat_ids: list[str],
                     status: int) -> None:
    await session.execute(update(GroupChat).where(
        GroupChat.tenant == tenant,
        GroupChat.chat_id.in_(chat_ids)).values(status=status))  # type: ignore[attr-defined]


async def orphaned(session: AsyncSession, *, tenant: str) -> list[GroupChat]:
    """Live groups whose owner has left (WeCom's status 1, or a guide the address book says
    left) and whose inheritance has not started, by owner."""
    left = select(Guide.userid).where(Guide.tenant == tenant,
                                      Guide.active.is_(False))  # type: ignore[attr-defined]
    stmt = (select(GroupChat).where(
        GroupChat.tenant == tenant, GroupChat.dismissed_at.is_(None),  # type: ignore[union-attr]
        GroupChat.status.in_((0, 1)),  # type: ignore[attr-defined]
        (GroupChat.status == 1) | GroupChat.owner.in_(left))  # type: ignore[attr-defined]
        .order_by(GroupChat.owner, GroupChat.chat_id))
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class Addressee:
    """A live group as a group_task drop sees it: its owner, the owner's store, and whether
    the owner still works here (a group whose owner left cannot be sent to)."""

    chat_id: str
    name: str
    owner: str
    owner_store: str | None
    owner_active: bool


async def addressees(session: AsyncSession, *, tenant: str) -> list[Addressee]:
    """Every live group (not dismissed), by owner then chat id."""
    stmt = (select(GroupChat.chat_id, GroupChat.name, GroupChat.owner, Guide.store_id,
                   Guide.active, GroupChat.status)
            .outerjoin(Guide, and_(Guide.tenant == GroupChat.tenant,
                                   Guide.userid == GroupChat.owner))
            .where(GroupChat.tenant == tenant,
                   GroupChat.dismissed_at.is_(None))  # type: ignore[union-attr]
            .order_by(GroupChat.owner, GroupChat.chat_id))
    # groupchat/list status 1-3: the owner left (离职); a guide unknown here counts as working
    return [Addressee(str(c), n or "", o or "", s, a is not False and not status)
            for c, n, o, s, a, status in (await session.execute(stmt)).all()]


async def names(session: AsyncSession, *, tenant: str, chat_ids: list[str]) -> dict[str, str]:
    """Groups' names by chat id (a group task's page lists them)."""
    if not chat_ids:
        return {}
    stmt = select(GroupChat.chat_id, GroupChat.name).where(
        GroupChat.tenant == tenant, GroupChat.chat_id.in_(chat_ids))  # type: ignore[attr-defined]
    return {str(c): n or "" for c, n in (await session.execute(stmt)).all()}
