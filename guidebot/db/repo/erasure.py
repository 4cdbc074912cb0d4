"""删除客户个人信息: the SQL that erases one customer, in the caller's transaction.

Personal rows are deleted; rows the brand keeps (orders, refunds, the commission ledger's
orders, the events the statistics count) stay with the customer's external_userid replaced by
a tombstone pseudonym, their unionid/openid cleared, and the customer's ids replaced by it
inside the JSON texts that hold them. Every table of guidebot/db/models*.py is named below,
in ERASED, PSEUDONYMISED, TEXTS or NOT_ABOUT_CUSTOMERS (tests/scenario/test_customer_erasure.py
scans the whole schema for what is left)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import (
    Binding,
    Customer,
    CustomerTag,
    Follow,
    FollowEvent,
    InboxItem,
    OutboxItem,
)
from guidebot.db.models_api import IdempotencyRecord
from guidebot.db.models_audit import AuditEntry
from guidebot.db.models_birthdays import CustomerBirthday
from guidebot.db.models_commerce import (
    Identity,
    Order,
    OrderEvent,
    Refund,
    Touch,
    TrackedLink,
)
from guidebot.db.models_groups import GroupCustomerChange, GroupMember
from guidebot.db.models_kf import KfCustomer, KfFlag, KfMessage, KfSession, OptOut
from guidebot.db.models_materials import MaterialUse, MaterialUseCustomer
from guidebot.db.models_notes import CustomerNote
from guidebot.db.models_pretags import PreTag
from guidebot.db.models_profile import CustomerFieldValue
from guidebot.db.models_segments import SegmentTagRun
from guidebot.db.models_sop import SopDropSend, SopEnrollment, SopStep, SopTask
from guidebot.db.models_stats import (
    StatsBatchOrder,
    StatsCustomer,
    StatsGroupCustomer,
    StatsWatermark,
)
from guidebot.db.models_transfers import CustomerTransfer


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


# Deleted: the person's own data (name, avatar, corp name, unionid, tags, 客户资料, birthday,
# follow-up notes, the 微信客服 mapping and session, the opt-out, group membership rows).
ERASED: tuple[tuple[Any, str], ...] = (
    (CustomerTag, "external_userid"), (CustomerFieldValue, "external_userid"),
    (CustomerBirthday, "external_userid"), (CustomerNote, "external_userid"),
    (KfCustomer, "external_userid"), (KfSession, "external_userid"),
    (OptOut, "external_userid"), (GroupMember, "member_id"),
)

# Deleted by rules of their own in `erase` (the customer row; pre-tags by unionid too; the
# unionid/openid mappings by value too).
DELETED_BY_RULE: tuple[Any, ...] = (Customer, PreTag, Identity)

# Blanked in place: what a guide wrote of them on the relation, what a 微信客服 message said.
BLANKED: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (Follow, ("remark", "description")), (KfMessage, ("text",)),
)

# Their unionid and openid cleared (the rows are kept, pseudonymised).
IDS_CLEARED: tuple[Any, ...] = (Order, Touch)

# Kept under the tombstone: what the figures (stats, usage, commissions, GMV) count.
PSEUDONYMISED: tuple[tuple[Any, str], ...] = (
    (Follow, "external_userid"), (FollowEvent, "external_userid"),
    (Binding, "external_userid"), (Touch, "external_userid"),
    (TrackedLink, "customer"), (Order, "external_userid"),
    (KfMessage, "external_userid"), (KfFlag, "external_userid"),
    (GroupCustomerChange, "external_userid"), (StatsCustomer, "external_userid"),
    (StatsGroupCustomer, "external_userid"), (StatsBatchOrder, "external_userid"),
    (SopEnrollment, "external_userid"), (SopStep, "external_userid"),
    (SopDropSend, "external_userid"), (CustomerTransfer, "external_userid"),
    (MaterialUse, "customer"), (MaterialUseCustomer, "customer"),
)

# Text (JSON) columns that may hold the customer's ids: each id is replaced by the tombstone.
TEXTS: tuple[tuple[Any, str], ...] = (
    (OutboxItem, "key"), (OutboxItem, "payload"), (OutboxItem, "result"), (SopTask, "detail"),
    (SegmentTagRun, "cursor"), (IdempotencyRecord, "result"), (Order, "evidence"),
    (Order, "lines"), (OrderEvent, "body"), (OrderEvent, "result"), (Refund, "items"),
    (Refund, "allocation"), (StatsWatermark, "gaps"), (AuditEntry, "params"),
)

# Tables that hold nothing about a customer (settings, guides, codes, content, tokens, stats
# without ids, the ledger keyed by order): left as they are.
NOT_ABOUT_CUSTOMERS = (
    "tenants", "stores", "guides", "corp_tags", "channel_codes", "acquisition_quotas",
    "app_message_sends", "access_tokens", "media_uploads", "commerce_rule_versions",
    "commerce_ledger", "commerce_settlements", "tenant_drops", "group_chats",
    "group_join_codes", "group_welcome_templates", "kf_cursors", "materials",
    "material_versions", "material_pieces", "points_ledger", "points_deliveries",
    "customer_segments", "jsapi_tickets", "sop_versions", "sop_cursors", "sop_drop_firings",
    "sop_switches", "stats_daily", "stats_order_marks", "stats_layer_adds",
    "stats_layer_buyers", "stats_group_daily", "sales_targets", "transfer_batches",
    "llm_calls", "customer_erasures", "department_leaders",
)


def classified_tables() -> set[str]:
    """Every table the erasure's inventory names (a new table must be added to one of the
    lists above: tests/scenario/test_customer_erasure.py checks the schema against it)."""
    return (personal_tables() | {_table(m).name for m, _ in PSEUDONYMISED}
            | {_table(m).name for m, _ in TEXTS} | set(NOT_ABOUT_CUSTOMERS))


def personal_tables() -> set[str]:
    """The tables whose rows about a customer the erasure deletes or blanks."""
    return ({_table(m).name for m, _ in ERASED} | {_table(m).name for m in DELETED_BY_RULE}
            | {_table(m).name for m, _ in BLANKED} | {_table(m).name for m in IDS_CLEARED}
            | {_table(InboxItem).name})


async def customer(session: AsyncSession, *, tenant: str,
                   external_userid: str) -> Customer | None:
    return await session.get(Customer, (tenant, external_userid))


async def following_guides(session: AsyncSession, *, tenant: str,
                           external_userid: str) -> list[str]:
    """Guides with a live relation (active or half-added) to the customer."""
    rows = await session.execute(select(Follow.guide).where(
        Follow.tenant == tenant, Follow.external_userid == external_userid,
        Follow.status.in_(("active", "half"))))  # type: ignore[attr-defined]
    return sorted(str(g) for g in rows.scalars())


def _contains(column: Any, value: str) -> Any:
    return column.contains(value, autoescape=True)


async def pending_callbacks(session: AsyncSession, *, tenant: str,
                            external_userid: str) -> int:
    """Callbacks not handled yet that name the customer (handling one may store them again)."""
    t = _table(InboxItem)
    found = await session.execute(select(func.count()).select_from(t).where(
        t.c.tenant == tenant, t.c.processed_at.is_(None),
        _contains(t.c.payload, external_userid)))
    return int(found.scalar_one())


async def linked_ids(session: AsyncSession, *, tenant: str, external_userid: str,
                     unionid: str | None) -> tuple[set[str], set[str]]:
    """The customer's unionids and openids as guidebot learnt them (profile, orders' identity
    mappings, 微信客服)."""
    unionids = {unionid} if unionid else set()
    openids: set[str] = set()
    rows = await session.execute(select(Identity.kind, Identity.value).where(
        Identity.tenant == tenant, Identity.external_userid == external_userid))
    for kind, value in rows:
        (unionids if kind == "unionid" else openids).add(str(value))
    kf = await session.execute(select(KfCustomer.unionid).where(
        KfCustomer.tenant == tenant, KfCustomer.external_userid == external_userid))
    unionids |= {str(u) for u in kf.scalars() if u}
    return unionids, openids


def _count(result: Any) -> int:
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


CHUNK = 500
WELCOME_CODE = re.compile(r"<WelcomeCode>(?:<!\[CDATA\[)?([^<\]]+)")


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


async def _ids_containing(session: AsyncSession, t: Table, col: Any, tenant: str,
                          value: str) -> set[int]:
    rows = await session.execute(select(t.c.id).where(t.c.tenant == tenant,
                                                      _contains(col, value)))
    return {int(i) for i in rows.scalars()}


@dataclass(frozen=True)
class Links:
    """What ties outbox rows to a customer besides their ids: the outbox keys made from
    their callbacks (welcome codes; the 删人提醒 keyed by the inbox item) and from their
    微信客服 messages and flags."""
    keys: frozenset[str]
    key_prefixes: frozenset[str]
    key_suffixes: frozenset[str]


async def _links(session: AsyncSession, *, tenant: str, external_userid: str,
                 values: Iterable[str]) -> Links:
    inbox = _table(InboxItem)
    keys: set[str] = set()
    prefixes: set[str] = set()
    for value in values:
        found = await session.execute(select(inbox.c.id, inbox.c.payload).where(
            inbox.c.tenant == tenant, _contains(inbox.c.payload, value)))
        for item_id, payload in found:
            keys |= {f"welcome:{c}" for c in WELCOME_CODE.findall(str(payload))}
            keys |= {f"churn_notify:{item_id}"}
            prefixes.add(f"guide_deleted_notify:{item_id}:")
    kf = _table(KfMessage)
    msgids = {str(m) for m in (await session.execute(select(kf.c.msgid).where(
        kf.c.tenant == tenant, kf.c.external_userid == external_userid))).scalars()}
    keys |= {f"kf_notify:{m}" for m in msgids}
    flags = _table(KfFlag)
    flag_ids = (await session.execute(select(flags.c.id).where(
        flags.c.tenant == tenant, flags.c.external_userid == external_userid))).scalars()
    suffixes = {f":{m}" for m in msgids} | {f":{i}" for i in flag_ids}
    return Links(frozenset(keys), frozenset(prefixes), frozenset(suffixes))


async def outbox_rows_about(session: AsyncSession, *, tenant: str, ids: Iterable[str],
                            links: Links) -> set[int]:
    """The outbox rows about the customer: a key, payload or result holding one of their
    ids, or a key made from their callbacks, 微信客服 messages or flags (a handoff reminder
    `handoff_reply:<servicer>:<msgid>`, a flag's notice `chat_watch:<member>:<flag>`)."""
    t = _table(OutboxItem)
    found: set[int] = set()
    for value in ids:
        for col in (t.c.key, t.c.payload, t.c.result):
            found |= await _ids_containing(session, t, col, tenant, value)
    for chunk in _chunks(sorted(links.keys)):
        rows = await session.execute(select(t.c.id).where(t.c.tenant == tenant,
                                                          t.c.key.in_(chunk)))
        found |= {int(i) for i in rows.scalars()}
    for prefix in links.key_prefixes:
        found |= {int(i) for i in (await session.execute(select(t.c.id).where(
            t.c.tenant == tenant, t.c.key.startswith(prefix, autoescape=True)))).scalars()}
    for suffix in links.key_suffixes:
        rows = await session.execute(select(t.c.id).where(
            t.c.tenant == tenant, t.c.key.endswith(suffix, autoescape=True),
            or_(t.c.key.startswith("handoff_reply:"), t.c.key.startswith("chat_watch:"))))
        found |= {int(i) for i in rows.scalars()}
    return found


async def erase(session: AsyncSession, *, tenant: str, external_userid: str, tombstone: str,
                name: str, unionids: Iterable[str], openids: Iterable[str]) -> dict[str, int]:
    """Erase the customer in this transaction; the rows touched per table."""
    counts: dict[str, int] = {}

    def tally(table: str, n: int) -> None:
        if n:
            counts[table] = counts.get(table, 0) + n

    unionids, openids = sorted(set(unionids)), sorted(set(openids))
    links = await _links(session, tenant=tenant, external_userid=external_userid,
                         values=(external_userid, *unionids))
    # inbox payloads naming the customer: handled ones are blanked (unhandled ones refuse
    # the erasure before this runs). The rows stay: on SQLite a deleted newest row's id
    # would be given to the next callback, and ids key outbox rows (`churn_notify:<id>`)
    inbox = _table(InboxItem)
    for value in (external_userid, *unionids):
        tally("inbox", _count(await session.execute(update(inbox).where(
            inbox.c.tenant == tenant, inbox.c.processed_at.is_not(None),
            _contains(inbox.c.payload, value)).values(payload=""))))
    tally("inbox", _count(await session.execute(update(inbox).where(
        inbox.c.tenant == tenant, inbox.c.order_key == f"c:{external_userid}"[:160])
        .values(order_key=f"c:{tombstone}"))))
    # what they said and their name, in the messages about them: the outbox rows and SOP
    # tasks linked to the customer (by their ids, their callbacks' welcome codes and inbox
    # items, their 微信客服 messages and flags, the SOP tasks naming them), as written or
    # JSON-escaped. Never a text search over the tenant's other rows: a name or a word
    # another customer shares stays theirs.
    kf = _table(KfMessage)
    said = await session.execute(select(kf.c.text).where(
        kf.c.tenant == tenant, kf.c.external_userid == external_userid))
    spoken = {str(text) for text in said.scalars() if len(str(text)) >= 2}
    if len(name) >= 2:
        spoken.add(name)
    forms = sorted({f for text in spoken for f in (text, json.dumps(text)[1:-1])},
                   key=len, reverse=True)
    outbox = _table(OutboxItem)
    rows = await outbox_rows_about(session, tenant=tenant, ids=(external_userid, *unionids,
                                                               *openids), links=links)
    tasks = _table(SopTask)
    task_ids = await _ids_containing(session, tasks, tasks.c.detail, tenant, external_userid)
    for t, col, ids in ((outbox, outbox.c.payload, rows), (outbox, outbox.c.result, rows),
                        (tasks, tasks.c.detail, task_ids)):
        for chunk in _chunks(sorted(ids)):
            for value in forms:
                tally(t.name, _count(await session.execute(update(t).where(
                    t.c.id.in_(chunk), _contains(col, value))
                    .values({col.name: func.replace(col, value, "")}))))
    for model, column in TEXTS:
        t = _table(model)
        col = t.c[column]
        for value in (external_userid, *unionids, *openids):
            tally(t.name, _count(await session.execute(update(t).where(
                t.c.tenant == tenant, _contains(col, value))
                .values({column: func.replace(col, value, tombstone)}))))
    pretags = _table(PreTag)
    tally("pretags", _count(await session.execute(delete(pretags).where(
        pretags.c.tenant == tenant, or_(pretags.c.external_userid == external_userid,
                                        pretags.c.unionid.in_(unionids))))))
    identities = _table(Identity)
    tally("commerce_identities", _count(await session.execute(delete(identities).where(
        identities.c.tenant == tenant, or_(identities.c.external_userid == external_userid,
                                           identities.c.value.in_(unionids + openids))))))
    for model, column in ERASED:
        t = _table(model)
        tally(t.name, _count(await session.execute(delete(t).where(
            t.c.tenant == tenant, t.c[column] == external_userid))))
    for model, columns in BLANKED:
        t = _table(model)
        await session.execute(update(t).where(
            t.c.tenant == tenant, t.c.external_userid == external_userid)
            .values({c: "" for c in columns}))
    enrollments = _table(SopEnrollment)
    await session.execute(update(enrollments).where(
        enrollments.c.tenant == tenant, enrollments.c.external_userid == external_userid,
        enrollments.c.status == "active").values(status="exited", reason="erased",
                                                  next_at=None))
    steps = _table(SopStep)
    await session.execute(update(steps).where(
        steps.c.tenant == tenant, steps.c.external_userid == external_userid,
        steps.c.status == "planned").values(status="cancelled", reason="erased"))
    for model in IDS_CLEARED:
        t = _table(model)
        await session.execute(update(t).where(
            t.c.tenant == tenant, t.c.external_userid == external_userid)
            .values(unionid=None, openid=None))
        await session.execute(update(t).where(
            t.c.tenant == tenant, or_(t.c.unionid.in_(unionids), t.c.openid.in_(openids)))
            .values(unionid=None, openid=None, external_userid=tombstone))
    for model, column in PSEUDONYMISED:
        t = _table(model)
        tally(t.name, _count(await session.execute(update(t).where(
            t.c.tenant == tenant, t.c[column] == external_userid)
            .values({column: tombstone}))))
    customers = _table(Customer)
    tally("customers", _count(await session.execute(delete(customers).where(
        customers.c.tenant == tenant, customers.c.external_userid == external_userid))))
    return counts
