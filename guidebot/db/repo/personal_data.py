"""查阅复制: the reads of one customer's personal-data export, one per section, in the caller's
read transaction. SECTIONS names the tables each section reads; tests/scenario/
test_customer_personal_data.py checks them against the erasure's inventory (repo/erasure.py),
so a table added to one and not the other fails."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Binding, CorpTag, Customer, CustomerTag, Follow, Guide
from guidebot.db.models_birthdays import CustomerBirthday
from guidebot.db.models_commerce import Identity, Order, Touch
from guidebot.db.models_groups import GroupChat, GroupMember
from guidebot.db.models_kf import KfCustomer, KfMessage, KfSession, OptOut
from guidebot.db.models_notes import CustomerNote
from guidebot.db.models_pretags import PreTag
from guidebot.db.models_profile import CustomerFieldValue

# section → the tables it reads (the order is the document's)
SECTIONS: dict[str, tuple[str, ...]] = {
    "profile": ("customers", "kf_customers", "commerce_identities"),
    "relations": ("follows", "guides"),
    "bindings": ("bindings",),
    "tags": ("customer_tags", "corp_tags"),
    "fields": ("customer_field_values",),
    "birthday": ("customer_birthdays",),
    "notes": ("customer_notes",),
    "opt_out": ("opt_outs",),
    "kf_messages": ("kf_messages", "kf_sessions"),
    "groups": ("group_members", "group_chats"),
    "orders": ("commerce_orders",),
    "card_visits": ("commerce_touches",),
    "pretags": ("pretags",),
}
# Tables the erasure blanks that the export leaves out, and why.
NOT_EXPORTED: dict[str, str] = {
    "inbox": "WeCom's callbacks as received (kept for the retention days): what they say "
             "is in the relations, tags and groups sections",
}

Row = dict[str, Any]


def _rows(result: Any) -> list[Row]:
    return [dict(r._mapping) for r in result]


async def customer(session: AsyncSession, tenant: str, external_userid: str) -> Row | None:
    found = await session.get(Customer, (tenant, external_userid))
    if found is None:
        return None
    return {k: getattr(found, k) for k in (
        "name", "avatar", "corp_name", "unionid", "gender", "contact_type", "created_at",
        "profile_fetched_at")}


async def linked_ids(session: AsyncSession, tenant: str, external_userid: str) -> list[Row]:
    """The unionids and openids learnt for them (orders' identity mappings, 微信客服)."""
    found = _rows(await session.execute(select(Identity.kind, Identity.value, Identity.source)
                                        .where(Identity.tenant == tenant,
                                               Identity.external_userid == external_userid)
                                        .order_by(Identity.kind, Identity.value)))
    kf = await session.execute(select(KfCustomer.unionid).where(
        KfCustomer.tenant == tenant, KfCustomer.external_userid == external_userid))
    found += [{"kind": "unionid", "value": u, "source": "kf"} for u in kf.scalars() if u]
    return found


async def relations(session: AsyncSession, tenant: str, external_userid: str) -> list[Row]:
    return _rows(await session.execute(
        select(Follow.guide, Guide.name.label("guide_name"),  # type: ignore[attr-defined]
               Follow.status, Follow.added_at, Follow.ended_at, Follow.remark,
               Follow.description)
        .outerjoin(Guide, (Guide.tenant == Follow.tenant)  # type: ignore[arg-type]
                   & (Guide.userid == Follow.guide))
        .where(Follow.tenant == tenant, Follow.external_userid == external_userid)
        .order_by(Follow.added_at, Follow.id)))


async def bindings(session: AsyncSession, tenant: str, external_userid: str) -> list[Row]:
    return _rows(await session.execute(
        select(Binding.guide, Binding.started_at, Binding.ended_at, Binding.end_reason)
        .where(Binding.tenant == tenant, Binding.external_userid == external_userid)
        .order_by(Binding.started_at, Binding.id)))


async def tags(session: AsyncSession, tenant: str, external_userid: str) -> list[Row]:
    return _rows(await session.execute(
        select(CustomerTag.guide, CorpTag.name, CorpTag.group_name, CustomerTag.added_at)
        .join(CorpTag, (CorpTag.tenant == CustomerTag.tenant)  # type: ignore[arg-type]
              & (CorpTag.tag_id == CustomerTag.tag_id))
        .where(CustomerTag.tenant == tenant, CustomerTag.external_userid == external_userid)
        .order_by(CustomerTag.guide, CorpTag.name)))


async def field_values(session: AsyncSession, tenant: str, external_userid: str) -> list[Row]:
    return _rows(await session.execute(
        select(CustomerFieldValue.field, CustomerFieldValue.value, CustomerFieldValue.set_by,
               CustomerFieldValue.set_at)
        .where(CustomerFieldValue.tenant == tenant,
               CustomerFieldValue.external_userid == external_userid)
        .order_by(CustomerFieldValue.field)))


async def birthday(session: AsyncSession, tenant: str, external_userid: str) -> Row | None:
    found = await session.get(CustomerBirthday, (tenant, external_userid))
    return None if found is None else {"month": found.month, "day": found.day,
                                       "year": found.year}


async def notes(session: AsyncSession, tenant: str, external_userid: str,
                limit: int) -> list[Row]:
    return _rows(await session.execute(
        select(CustomerNote.text, CustomerNote.guide, CustomerNote.created_at,
               CustomerNote.follow_up_on)
        .where(CustomerNote.tenant == tenant, CustomerNote.external_userid == external_userid)
        .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc())  # type: ignore
        .limit(limit)))


async def opt_out(session: AsyncSession, tenant: str, external_userid: str) -> Row | None:
    found = await session.get(OptOut, (tenant, external_userid))
    return None if found is None else {"opted_out_at": found.opted_out_at}


async def kf_messages(session: AsyncSession, tenant: str, external_userid: str,
                      limit: int) -> tuple[list[Row], int]:
    """Their latest `limit` 微信客服 messages, newest first, and how many there are in all."""
    where = (KfMessage.tenant == tenant, KfMessage.external_userid == external_userid)
    total = (await session.execute(select(func.count()).select_from(KfMessage)
                                   .where(*where))).scalar_one()
    rows = _rows(await session.execute(
        select(KfMessage.send_time, KfMessage.origin, KfMessage.msgtype, KfMessage.event_type,
               KfMessage.text, KfMessage.servicer_userid)
        .where(*where).order_by(KfMessage.send_time.desc(),  # type: ignore[attr-defined]
                                KfMessage.id.desc())  # type: ignore[union-attr]
        .limit(limit)))
    return rows, int(total)


async def kf_sessions(session: AsyncSession, tenant: str, external_userid: str) -> list[Row]:
    return _rows(await session.execute(
        select(KfSession.open_kfid, KfSession.last_customer_at)
        .where(KfSession.tenant == tenant, KfSession.external_userid == external_userid)
        .order_by(KfSession.open_kfid)))


async def groups(session: AsyncSession, tenant: str, external_userid: str) -> list[Row]:
    return _rows(await session.execute(
        select(GroupMember.chat_id, GroupChat.name, GroupMember.joined_at,
               GroupMember.left_at)
        .outerjoin(GroupChat, (GroupChat.tenant == GroupMember.tenant)  # type: ignore
                   & (GroupChat.chat_id == GroupMember.chat_id))
        .where(GroupMember.tenant == tenant, GroupMember.member_id == external_userid)
        .order_by(GroupMember.joined_at, GroupMember.chat_id)))


def _theirs(model: Any, external_userid: str, unionids: Iterable[str],
            openids: Iterable[str]) -> Any:
    """A row of theirs: by their external_userid or by a unionid/openid of theirs (as the
    erasure pseudonymises them)."""
    return or_(model.external_userid == external_userid, model.unionid.in_(list(unionids)),
               model.openid.in_(list(openids)))


async def orders(session: AsyncSession, tenant: str, external_userid: str, *,
                 unionids: Iterable[str], openids: Iterable[str], limit: int) -> list[Row]:
    return _rows(await session.execute(
        select(Order.order_no, Order.paid_at, Order.amount_fen, Order.guide, Order.lines)
        .where(Order.tenant == tenant, _theirs(Order, external_userid, unionids, openids))
        .order_by(Order.paid_at.desc(), Order.order_no)  # type: ignore[attr-defined]
        .limit(limit)))


async def touches(session: AsyncSession, tenant: str, external_userid: str, *,
                  unionids: Iterable[str], openids: Iterable[str], limit: int) -> list[Row]:
    return _rows(await session.execute(
        select(Touch.at, Touch.kind, Touch.sku, Touch.category, Touch.guide, Touch.dur_s)
        .where(Touch.tenant == tenant, _theirs(Touch, external_userid, unionids, openids))
        .order_by(Touch.at.desc(), Touch.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)))


async def pretags(session: AsyncSession, tenant: str, external_userid: str, *,
                  unionids: Iterable[str]) -> list[Row]:
    return _rows(await session.execute(
        select(PreTag.unionid, CorpTag.name, PreTag.created_at, PreTag.applied_at)
        .outerjoin(CorpTag, (CorpTag.tenant == PreTag.tenant)  # type: ignore[arg-type]
                   & (CorpTag.tag_id == PreTag.tag_id))
        .where(PreTag.tenant == tenant, or_(PreTag.external_userid == external_userid,
                                            PreTag.unionid.in_(list(unionids))))
        .order_by(PreTag.created_at, PreTag.tag_id)))
