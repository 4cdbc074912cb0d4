"""Retention queries: handled inbox items and old 操作日志 entries deleted, 微信客服 texts and
the payloads of finished outbox calls that carry texts blanked, a bounded batch per call
(guidebot/retention.py runs them, one short transaction each)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import BLANKED_PAYLOAD, InboxItem, OutboxItem
from guidebot.db.models_audit import AuditEntry
from guidebot.db.models_kf import TEXT_KEPT, KfMessage


class Count(Protocol):
    async def __call__(self, session: AsyncSession, *, tenant: str,
                       before: datetime) -> int: ...


class Step(Protocol):
    async def __call__(self, session: AsyncSession, *, tenant: str, before: datetime,
                       limit: int) -> int: ...


FAILED = "failed"  # an inbox item that failed for good: kept (inbox.py records it so)


def _old_handled(tenant: str, before: datetime) -> Any:
    """The tenant's inbox items handled before `before` (the index ix_inbox_handled), not the
    failed ones, and never the newest item of the table: SQLite (no AUTOINCREMENT) gives a new
    row the largest id + 1, so deleting the largest would hand its id out again, and ids name
    things elsewhere (follow_events.inbox_id, the churn notice's outbox key)."""
    newest = select(func.max(InboxItem.id)).correlate(None).scalar_subquery()
    return (InboxItem.tenant == tenant,
            InboxItem.processed_at < before,  # type: ignore[operator]
            InboxItem.outcome != FAILED,
            InboxItem.id < newest)  # type: ignore[operator]


async def delete_handled_inbox(session: AsyncSession, *, tenant: str, before: datetime,
                               limit: int) -> int:
    """Delete at most `limit` of the tenant's handled inbox items older than `before`; how
    many were deleted."""
    batch = select(InboxItem.id).where(*_old_handled(tenant, before)).limit(limit)
    result = await session.execute(
        delete(InboxItem).where(InboxItem.id.in_(batch)))  # type: ignore[union-attr]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_handled_inbox(session: AsyncSession, *, tenant: str, before: datetime) -> int:
    """How many items delete_handled_inbox would delete in all."""
    stmt = select(func.count()).select_from(InboxItem).where(*_old_handled(tenant, before))
    return int((await session.execute(stmt)).scalar_one())


def _old_texts(tenant: str, before: datetime) -> Any:
    """The tenant's 微信客服 text messages sent before `before` whose text is still kept
    (the partial index ix_kf_messages_text_kept: blanked ones leave it). Events keep their
    fields (ids, not words): the reply-time figures read them."""
    # the index's own words, not parameters: SQLite uses a partial index only then
    return (KfMessage.tenant == tenant, text(TEXT_KEPT),
            KfMessage.send_time < before)  # type: ignore[operator]


async def blank_kf_texts(session: AsyncSession, *, tenant: str, before: datetime,
                         limit: int) -> int:
    """Blank the text of at most `limit` of the tenant's 微信客服 text messages sent before
    `before` (the row, its ids, route and outcome stay); how many were blanked."""
    batch = select(KfMessage.id).where(*_old_texts(tenant, before)).limit(limit)
    result = await session.execute(
        update(KfMessage).where(KfMessage.id.in_(batch))  # type: ignore[union-attr]
        .values(text=""))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_kf_texts(session: AsyncSession, *, tenant: str, before: datetime) -> int:
    """How many texts blank_kf_texts would blank in all."""
    stmt = select(func.count()).select_from(KfMessage).where(*_old_texts(tenant, before))
    return int((await session.execute(stmt)).scalar_one())


def _old_audit(tenant: str, before: datetime) -> Any:
    """The tenant's 操作日志 entries recorded before `before` (the index
    ix_audit_log_tenant_at)."""
    return (AuditEntry.tenant == tenant, AuditEntry.at < before)  # type: ignore[operator]


async def delete_audit(session: AsyncSession, *, tenant: str, before: datetime,
                       limit: int) -> int:
    """Delete at most `limit` of the tenant's 操作日志 entries older than `before`; how many
    were deleted."""
    batch = select(AuditEntry.id).where(*_old_audit(tenant, before)).limit(limit)
    result = await session.execute(
        delete(AuditEntry).where(AuditEntry.id.in_(batch)))  # type: ignore[union-attr]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_audit(session: AsyncSession, *, tenant: str, before: datetime) -> int:
    """How many entries delete_audit would delete in all."""
    stmt = select(func.count()).select_from(AuditEntry).where(*_old_audit(tenant, before))
    return int((await session.execute(stmt)).scalar_one())


FINISHED = ("done", "dead", "expired")  # outbox states no retry job takes up again


def _old_outbox(tenant: str, before: datetime, kinds: Sequence[str]) -> Any:
    """The tenant's outbox rows of `kinds` that finished (sent, dead or expired) before
    `before` and still hold their payload."""
    return (OutboxItem.status.in_(FINISHED), OutboxItem.tenant == tenant,  # type: ignore[attr-defined]
            OutboxItem.kind.in_(list(kinds)),  # type: ignore[attr-defined]
            OutboxItem.updated_at < before,  # type: ignore[operator]
            OutboxItem.payload != BLANKED_PAYLOAD)


async def blank_outbox_payloads(session: AsyncSession, *, tenant: str, before: datetime,
                                kinds: Sequence[str], status: str, after: int,
                                limit: int) -> list[int]:
    """Blank the payload of at most `limit` of those rows in one finished `status` whose id
    is above `after` (BLANKED_PAYLOAD; the row, its key, kind, state, attempts, result and
    times stay: `updated_at` too, which usage metering counts by); their ids, ascending.

    The caller walks the ids upwards, so a run reads each row once however many are blanked
    already: ix_outbox_status_tenant holds one state's and tenant's rows in id order on
    SQLite (the rowid ends every index), and PostgreSQL walks its primary key from `after`."""
    ids = list((await session.execute(
        select(OutboxItem.id).where(*_old_outbox(tenant, before, kinds),
                                    OutboxItem.status == status,
                                    OutboxItem.id > after)  # type: ignore[operator]
        .order_by(OutboxItem.id).limit(limit))).scalars())
    if ids:
        # the conditions again: on PostgreSQL a dead row HQ has just put back for retry
        # (pending now) may have changed since the select, and must keep its texts
        await session.execute(
            update(OutboxItem).where(OutboxItem.id.in_(ids),  # type: ignore[union-attr]
                                     *_old_outbox(tenant, before, kinds))
            .values(payload=BLANKED_PAYLOAD))
    return ids


async def count_outbox_payloads(session: AsyncSession, *, tenant: str, before: datetime,
                                kinds: Sequence[str]) -> int:
    """How many payloads blank_outbox_payloads would blank in all."""
    stmt = select(func.count()).select_from(OutboxItem).where(
        *_old_outbox(tenant, before, kinds))
    return int((await session.execute(stmt)).scalar_one())
