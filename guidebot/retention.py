"""Data retention (数据保留): a tenant's handled inbox items (decrypted callback payloads)
older than `[tenants.<id>.retention] inbox_days` are deleted, and the text of its 微信客服
messages older than `kf_text_days` blanked, and its 操作日志 entries older than `audit_days`
deleted; once a day (checked hourly, one process at a time)
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


@dataclass(frozen=True)
class Pruned:
    """What a run did (or, dry, would do) for one tenant. None: that part is off (0 days)."""

    tenant: str
    inbox_deleted: int | None
    kf_texts_blanked: int | None
    audit_deleted: int | None


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
        deleted = blanked = audited = None
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
        log.info("retention tenant=%s inbox_deleted=%s kf_texts_blanked=%s audit_deleted=%s "
                 "dry_run=%s", tenant, deleted, blanked, audited, dry_run)
        return Pruned(tenant, deleted, blanked, audited)

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
