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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, delete, or_, select, update
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
from guidebot.db.models_groups import CUSTOMER, GroupChat, GroupCustomerChange, GroupMember
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

# Outbox kinds whose message is made for one customer (to them, or to a guide about them):
# the customer's name and words are taken out of these messages' texts on erasure.
ONE_CUSTOMER_KINDS = ("welcome", "kf_send", "kf_notify", "kf_welcome", "radar_notify",
                      "churn_notify", "guide_deleted_notify", "handoff_remind",
                      "watch_notify")
TEXT_KEYS = frozenset({"content", "title", "description"})  # a message's words in WeCom's body


def without_words(payload: str, words: Iterable[str]) -> str | None:
    """The payload (JSON) with `words` taken out of its message texts (the values of
    `content`, `title` and `description`, at any depth); None when nothing changes or it
    is not JSON."""
    order = sorted(set(words), key=len, reverse=True)
    if not order:
        return None
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k in TEXT_KEYS and isinstance(v, str):
                    new = v
                    for word in order:
                        new = new.replace(word, "")
                    changed |= new != v
                    out[k] = new
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result = walk(body)
    return json.dumps(result) if changed else None


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


async def live_groups(session: AsyncSession, *, tenant: str,
                      external_userid: str) -> list[str]:
    """The names (else chat ids) of the customer groups the customer is still in, as
    guidebot last read them (not left, the group not dismissed)."""
    members, chats = _table(GroupMember), _table(GroupChat)
    rows = await session.execute(
        select(chats.c.name, chats.c.chat_id).select_from(members.join(chats, and_(
            chats.c.tenant == members.c.tenant, chats.c.chat_id == members.c.chat_id)))
        .where(members.c.tenant == tenant, members.c.member_id == external_userid,
               members.c.kind == CUSTOMER, members.c.left_at.is_(None),
               chats.c.dismissed_at.is_(None)))
    return sorted({str(name or chat) for name, chat in rows})


def _contains(column: Any, value: str) -> Any:
    return column.contains(value, autoescape=True)


async def pending_callbacks(session: AsyncSession, *, tenant: str,
                            external_userid: str) -> int:
    """Callbacks not handled yet that name the customer (handling one may store them again)."""
    t = _table(InboxItem)
    return len(await _rows_naming(session, t, t.c.payload, tenant, [external_userid],
                                  extra=(t.c.processed_at.is_(None),)))


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


# The characters of a WeCom id (external_userid, unionid, openid): another id's text around
# a match means the match is inside that other id, not this one.
ID_CHARS = r"A-Za-z0-9_\-"


def whole_ids(values: Iterable[str]) -> re.Pattern[str]:
    """Any of `values` as a whole id (never inside a longer id: erasing "wmA" leaves "wmAB")."""
    wanted = sorted({v for v in values if v}, key=len, reverse=True) or ["\x00never"]
    return re.compile(rf"(?<![{ID_CHARS}])(?:{'|'.join(map(re.escape, wanted))})"
                      rf"(?![{ID_CHARS}])")


async def _rows_naming(session: AsyncSession, t: Table, col: Any, tenant: str,
                       values: Sequence[str], *, extra: Sequence[Any] = ()
                       ) -> list[tuple[tuple[Any, ...], str]]:
    """(primary key, text) of the tenant's rows whose `col` holds one of the ids as a whole
    id, case as written. The SQL only narrows (LIKE matches inside other ids, and ignores
    case on SQLite); the pattern decides."""
    if not values:
        return []
    pattern = whole_ids(values)
    pk = list(t.primary_key.columns)
    rows = await session.execute(select(*pk, col).where(
        t.c.tenant == tenant, or_(*[_contains(col, v) for v in values]), *extra))
    return [(tuple(row[:-1]), str(row[-1])) for row in rows if pattern.search(str(row[-1]))]


async def _write(session: AsyncSession, t: Table, col: Any, key: tuple[Any, ...],
                 value: str) -> None:
    pk = list(t.primary_key.columns)
    await session.execute(update(t).where(*[c == k for c, k in zip(pk, key, strict=True)])
                          .values({col.name: value}))


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
    for (item_id,), payload in await _rows_naming(session, inbox, inbox.c.payload, tenant,
                                                 list(values)):
        keys |= {f"welcome:{c}" for c in WELCOME_CODE.findall(payload)}
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
    for col in (t.c.key, t.c.payload, t.c.result):
        found |= {int(key[0]) for key, _ in await _rows_naming(session, t, col, tenant,
                                                              list(ids))}
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
    ids = [external_userid, *unionids, *openids]
    # inbox payloads naming the customer: handled ones are blanked (unhandled ones refuse
    # the erasure before this runs). The rows stay: on SQLite a deleted newest row's id
    # would be given to the next callback, and ids key outbox rows (`churn_notify:<id>`)
    inbox = _table(InboxItem)
    for key, _ in await _rows_naming(session, inbox, inbox.c.payload, tenant,
                                     [external_userid, *unionids],
                                     extra=(inbox.c.processed_at.is_not(None),)):
        await _write(session, inbox, inbox.c.payload, key, "")
        tally("inbox", 1)
    tally("inbox", _count(await session.execute(update(inbox).where(
        inbox.c.tenant == tenant, inbox.c.order_key == f"c:{external_userid}"[:160])
        .values(order_key=f"c:{tombstone}"))))
    # their name and what they said, in the messages made for them alone (a welcome, a
    # 微信客服 reply or handoff notice, a radar, churn or 会话质检 notice) linked to them by
    # their ids, their callbacks' welcome codes and inbox items, their 微信客服 messages and
    # flags: removed from those messages' texts only. Never a text search over rows about
    # other customers: a name or a word another customer shares stays theirs.
    kf = _table(KfMessage)
    said = await session.execute(select(kf.c.text).where(
        kf.c.tenant == tenant, kf.c.external_userid == external_userid))
    words = {str(text) for text in said.scalars() if len(str(text)) >= 2}
    if len(name) >= 2:
        words.add(name)
    outbox = _table(OutboxItem)
    about = await outbox_rows_about(session, tenant=tenant, ids=ids, links=links)
    for chunk in _chunks(sorted(about)):
        rows = await session.execute(select(outbox.c.id, outbox.c.payload).where(
            outbox.c.id.in_(chunk), outbox.c.kind.in_(ONE_CUSTOMER_KINDS)))
        for row_id, payload in rows:
            scrubbed = without_words(str(payload), words)
            if scrubbed is not None:
                await _write(session, outbox, outbox.c.payload, (row_id,), scrubbed)
                tally("outbox", 1)
    # their ids, wherever a text holds one: the tombstone in its place
    pattern = whole_ids(ids)
    for model, column in TEXTS:
        t = _table(model)
        col = t.c[column]
        for key, text in await _rows_naming(session, t, col, tenant, ids):
            await _write(session, t, col, key, pattern.sub(tombstone, text))
            tally(t.name, 1)
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
