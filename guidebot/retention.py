"""Data retention (数据保留): a tenant's handled inbox items (decrypted callback payloads)
older than `[tenants.<id>.retention] inbox_days` are deleted, and the text of its 微信客服
messages older than `kf_text_days` blanked, its 操作日志 entries older than `audit_days`
deleted, and the payloads of its finished outbox calls that carry texts (OUTBOX_TEXT_KINDS)
blanked `outbox_days` after they finished; once a day (checked hourly, one process at a time)
and on `guidebot retention run`. Each batch is its own short transaction, so callbacks
arriving meanwhile never wait long for SQLite's one writer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from guidebot.contacts.due import run_if_due
from guidebot.db.engine import Database
from guidebot.db.repo import retention as repo
from guidebot.db.repo import sop_tasks as job_state
from guidebot.db.types import utcnow
from guidebot.settings import Settings

log = logging.getLogger(__name__)

BATCH = 5_000  # rows per transaction
EVERY = timedelta(days=1)
CURSOR = "retention"  # job_state: when the tenant's last run ended

# Outbox kinds whose payload is a message's words (customers' and guides' names among them):
# blanked once the call finished. The code reads a finished row's key, kind, state and times,
# never such a payload, but for two things: the handoff page shows the bot's 微信客服 replies
# (a blanked one as removed), and the console's retry of a dead row sends its payload again
# (refused once blanked: guidebot/stats/records.py).
OUTBOX_TEXT_KINDS = (
    "welcome", "kf_send", "kf_welcome", "kf_notify", "app_text", "material_review",
    "churn_notify", "guide_deleted_notify", "radar_notify", "morning_digest",
    "manager_weekly", "handoff_remind", "watch_notify", "transfer_notify")
# Kinds whose payload holds ids (or the brand's own content) that their executor loads the
# words from when it runs, and that code reads after the call: kept as they are, so a dead
# one can still be retried (an SOP task's 群发 or 停止群发, a tag marked, a transfer).
OUTBOX_KEPT_KINDS = (
    "mark_tag", "sop_guide_task", "sop_reminder", "sop_moment", "sop_notify",
    "sop_group_task", "sop_cancel", "channel_serving", "channel_verify",
    "customer_transfer", "group_transfer", "group_welcome")


@dataclass(frozen=True)
class Pruned:
    """What a run did (or, dry, would do) for one tenant. None: that part is off (0 days)."""

    tenant: str
    inbox_deleted: int | None
    kf_texts_blanked: int | None
    audit_deleted: int | None
    outbox_blanked: int | None


class Retention:
    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings, self._db = settings, db

    async def run_if_due(self, tenant: str, *, now: datetime | None = None) -> Pruned | None:
        """The run, at most once a day across processes and restarts, in one process at a
        time (PostgreSQL advisory lock). None: not due, or another process runs it."""
        now = now or utcnow()

        async def run(tenant_id: str) -> Pruned:
            pruned = await self.run(tenant_id, now=now)
            async with self._db.write() as s:
                await job_state.set_cursor(s, tenant=tenant_id, name=CURSOR,
                                           value=now.isoformat())
            return pruned

        return await run_if_due(self._db, tenant, lock="retention", cursor=CURSOR,
                                every=EVERY, now=now, run=run)

    async def run(self, tenant: str, *, now: datetime | None = None,
                  dry_run: bool = False) -> Pruned:
        """Delete and blank what the tenant's retention settings say is too old at `now`
        (dry: count it only)."""
        now = now or utcnow()
        keep = self._settings.tenant(tenant).retention
        deleted = blanked = audited = outbox = None
        if keep.inbox_days:
            deleted = await self._batches(
                tenant, now - timedelta(days=keep.inbox_days), dry_run,
                count=repo.count_handled_inbox, step=repo.delete_handled_inbox)
        if keep.kf_text_days:
            blanked = await self._batches(
                tenant, now - timedelta(days=keep.kf_text_days), dry_run,
                count=repo.count_kf_texts, step=repo.blank_kf_texts)
        if keep.audit_days:
            audited = await self._batches(
                tenant, now - timedelta(days=keep.audit_days), dry_run,
                count=repo.count_audit, step=repo.delete_audit)
        if keep.outbox_days:
            outbox = await self._outbox(tenant, now - timedelta(days=keep.outbox_days),
                                        dry_run)
        log.info("retention tenant=%s inbox_deleted=%s kf_texts_blanked=%s audit_deleted=%s "
                 "outbox_blanked=%s dry_run=%s", tenant, deleted, blanked, audited, outbox,
                 dry_run)
        return Pruned(tenant, deleted, blanked, audited, outbox)

    async def _batches(self, tenant: str, before: datetime, dry_run: bool, *,
                       count: repo.Count, step: repo.Step) -> int:
        if dry_run:
            async with self._db.read() as s:
                return await count(s, tenant=tenant, before=before)
        done = 0
        while True:
            async with self._db.write() as s:
                changed = await step(s, tenant=tenant, before=before, limit=BATCH)
            done += changed
            if changed < BATCH:
                return done

    async def _outbox(self, tenant: str, before: datetime, dry_run: bool) -> int:
        """Blank the finished outbox payloads that carry texts: each finished state's rows
        walked by id, a batch per transaction (a first run over years of rows reads each
        once)."""
        if dry_run:
            async with self._db.read() as s:
                return await repo.count_outbox_payloads(s, tenant=tenant, before=before,
                                                        kinds=OUTBOX_TEXT_KINDS)
        done = 0
        for status in repo.FINISHED:
            after = 0
            while True:
                async with self._db.write() as s:
                    ids = await repo.blank_outbox_payloads(
                        s, tenant=tenant, before=before, kinds=OUTBOX_TEXT_KINDS,
                        status=status, after=after, limit=BATCH)
                done += len(ids)
                if len(ids) < BATCH:
                    break
                after = ids[-1]
        return done
