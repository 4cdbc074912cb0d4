"""批量打标签: a corp tag marked on every customer a segment (客户分群) finds, through the
relation with their guide (the live relation they began last), one `mark_tag` each through
the outbox, as a run HQ watches.

Starting a run records it (state "staging") and answers at once; a task this process owns
then stages the run a page of members at a time: the page's outbox rows, the run's counts
and the members' cursor are written in one transaction, then the outbox makes the page's
calls (IN_FLIGHT at a time; a call that fails is the outbox's to retry). The run is leased
by the process staging it (renewed each page). When a process dies or stops mid-staging, the
run stays "staging" with its cursor: the periodic job (and the next start) takes over a run
whose lease ran out and goes on from the cursor, so a page is staged once and its counts
added once (a page written under a lease another process took over is rolled back). Rows
staged but never attempted are the outbox's to retry, as any batched call's.

The outbox key names the run and the customer: a retry of a page queues nothing twice, and
a later run marks again a customer whose tag was removed since. While a run for the same
segment and tag is staging, starting another is refused (409 with that run)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from guidebot import lanes
from guidebot.db.engine import Database
from guidebot.db.models_segments import SegmentTagRun
from guidebot.db.repo import segment_runs as repo
from guidebot.db.repo import tags as tags_repo
from guidebot.db.repo.console import FOLLOWING
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, StateConflict
from guidebot.outbox import Executor, Outbox, Prepared
from guidebot.segments.service import Segments

log = logging.getLogger(__name__)

PAGE = 500  # customers read (and marks registered) at a time
IN_FLIGHT = 8  # mark_tag calls at a time
LEASE_S = 120.0  # a run staging in a process that stopped is taken over after this
COUNTS = ("matched", "queued", "carrying", "no_guide", "repeated")


class RunStaging(StateConflict):
    """A run for this segment and tag is staging: `run` is that run."""

    def __init__(self, run: dict[str, Any]) -> None:
        super().__init__(f"tag_id: a run for this segment and tag is staging (run {run['id']})",
                         code="seg.run_staging", run_id=run["id"])
        self.run = run


class _Lost(Exception):
    """Another process took the run over (this one's lease had run out)."""


def key_prefix(run_id: int) -> str:
    return f"mark_tag:run:{run_id}:"


def view(run: SegmentTagRun, marks: dict[str, int]) -> dict[str, Any]:
    """The run with what the outbox made of its marks: `sent` (done), `pending` (to be
    sent), `failed` (failed, waiting for a retry), `dead` (given up)."""
    return {"id": run.id, "segment": run.segment_id, "tag_id": run.tag_id, "tag": run.tag,
            "state": run.state, **{k: getattr(run, k) for k in COUNTS},
            "sent": marks.get("done", 0),
            "pending": marks.get("sending", 0) + marks.get("pending", 0),
            "failed": marks.get("failed", 0),
            "dead": marks.get("dead", 0) + marks.get("expired", 0),
            "error": run.error, "operator": run.operator, "created_at": run.created_at,
            "finished_at": run.finished_at}


class SegmentTagging:
    def __init__(self, db: Database, outbox: Outbox, segments: Segments,
                 mark_call: Executor, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._outbox = outbox
        self._segments = segments
        self._mark_call = mark_call
        self._clock = clock
        self._owner = f"{os.getpid()}:{secrets.token_hex(4)}"
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def _lease(self) -> datetime:
        return self._clock() + timedelta(seconds=LEASE_S)

    async def start(self, tenant: str, segment_id: int, tag_id: str,
                    operator: str) -> dict[str, Any]:
        """A new run (staging in the background); NotFound for an unknown segment or tag,
        RunStaging while a run for the same segment and tag is staging."""
        async with self._db.read() as s:
            tag = await tags_repo.live_tags(s, tenant=tenant, tag_id=tag_id)
        if not tag:
            raise NotFound(f"tag_id: no tag {tag_id}", code="tag_unknown", tag_id=tag_id)
        async with self._db.write() as s:
            if not await repo.lock_segment(s, tenant=tenant, segment_id=segment_id):
                raise NotFound(f"segment_id: no segment {segment_id} in this brand",
                               code="segment.unknown", segment_id=segment_id)
            running = await repo.staging(s, tenant=tenant, segment_id=segment_id,
                                         tag_id=tag_id)
            if running is None:
                row = await repo.insert(s, tenant=tenant, segment_id=segment_id,
                                        tag_id=tag_id, tag=tag[0].name, operator=operator[:64],
                                        owner=self._owner, lease_until=self._lease(),
                                        now=self._clock())
                assert row.id is not None
                run_id = row.id
        if running is not None:
            assert running.id is not None
            raise RunStaging(await self.get(tenant, running.id))
        log.info("segment tag run %s tenant=%s segment=%s tag=%s started by %s", run_id,
                 tenant, segment_id, tag_id, operator[:64])
        answer = await self.get(tenant, run_id)  # as started: nothing staged yet
        self._spawn(tenant, run_id)
        return answer

    async def get(self, tenant: str, run_id: int) -> dict[str, Any]:
        async with self._db.read() as s:
            run = await repo.get(s, tenant=tenant, run_id=run_id)
            if run is None:
                raise NotFound(f"run_id: no tagging run {run_id} in this brand",
                               code="seg.run_unknown", run_id=run_id)
            return view(run, await repo.marks(s, run=run, prefix=key_prefix(run_id)))

    async def of_segment(self, tenant: str, segment_id: int) -> list[dict[str, Any]]:
        """The segment's runs, newest first (repo.LISTED at most), with their marks."""
        async with self._db.read() as s:
            runs = await repo.of_segment(s, tenant=tenant, segment_id=segment_id)
            out = []
            for run in runs:
                assert run.id is not None
                out.append(view(run, await repo.marks(s, run=run, prefix=key_prefix(run.id))))
            return out

    async def resume(self, *, at_start: bool = False) -> int:
        """Take over runs left staging whose lease ran out (at the start on SQLite, every
        run left staging: one process, so whoever staged it has stopped)."""
        now = self._clock()
        cutoff = now + timedelta(seconds=LEASE_S + 1) if at_start and self._db.is_sqlite \
            else now
        async with self._db.read() as s:
            found = await repo.lapsed(s, before=cutoff)
        taken = 0
        for run_id, tenant in found:
            if run_id in self._tasks:
                continue
            async with self._db.write() as s:
                if not await repo.claim(s, run_id=run_id, owner=self._owner, before=cutoff,
                                        lease_until=self._lease()):
                    continue
            log.info("segment tag run %s tenant=%s resumed", run_id, tenant)
            self._spawn(tenant, run_id)
            taken += 1
        return taken

    def _spawn(self, tenant: str, run_id: int) -> None:
        task = asyncio.create_task(self._stage(tenant, run_id), name=f"segment-tags-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run_id, None))

    async def drain(self) -> None:
        """Wait until the runs this process is staging are staged (tests and the demo)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        """Stop staging (a run left staging is taken over once its lease runs out)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stage(self, tenant: str, run_id: int) -> None:
        with lanes.background():
            try:
                while await self._page(tenant, run_id):
                    pass
            except _Lost:
                log.info("segment tag run %s tenant=%s taken over elsewhere", run_id, tenant)
            except NotFound as exc:  # the segment was deleted meanwhile
                await self._fail(run_id, str(exc))
            except Exception as exc:  # noqa: BLE001 - the run says it failed; logged with id
                log.exception("segment tag run %s tenant=%s failed", run_id, tenant)
                await self._fail(run_id, type(exc).__name__)

    async def _fail(self, run_id: int, error: str) -> None:
        async with self._db.write() as s:
            await repo.fail(s, run_id=run_id, owner=self._owner, error=error,
                            now=self._clock())

    async def _page(self, tenant: str, run_id: int) -> bool:
        """Stage the next page; False when the run is staged (or no longer this process's)."""
        async with self._db.read() as s:
            run = await repo.get(s, tenant=tenant, run_id=run_id)
        if run is None or run.state != "staging" or run.lease_owner != self._owner:
            return False
        found = await self._segments.members(tenant, run.segment_id, limit=PAGE,
                                             after=run.cursor)
        rows = found.rows
        added = dict.fromkeys(COUNTS, 0)
        added["matched"] = len(rows)
        async with self._db.read() as s:
            carrying = await tags_repo.carrying(s, tenant=tenant, tag_id=run.tag_id,
                                                external_userids=[r["external_userid"]
                                                                  for r in rows])
        wanted = []
        for row in rows:
            customer = row["external_userid"]
            live = [f["guide"] for f in row["follows"] if f["status"] in FOLLOWING]
            if customer in carrying:
                added["carrying"] += 1
            elif not live:
                added["no_guide"] += 1
            else:
                key = f"{key_prefix(run_id)}{customer}"[:160]
                wanted.append((key, "mark_tag", {
                    "userid": live[-1], "external_userid": customer,
                    "add_tag": [run.tag_id], "remove_tag": [], "ref": key}))
        done = found.next is None
        async with self._db.write() as s:
            claimed = await self._outbox.register_many(s, tenant=tenant, rows=wanted)
            added["queued"] = len(claimed)
            added["repeated"] = len(wanted) - len(claimed)
            if not await repo.staged_page(s, run_id=run_id, owner=self._owner, added=added,
                                          ids=list(claimed.values()),
                                          cursor=found.next or run.cursor, done=done,
                                          lease_until=self._lease(), now=self._clock()):
                raise _Lost()  # rolls the page back
        prepared = [Prepared(claimed[key], tenant, kind, partial(self._mark_call, tenant, payload))
                    for key, kind, payload in wanted if key in claimed]
        await self._outbox.attempt_many(prepared, in_flight=IN_FLIGHT)
        if done:
            log.info("segment tag run %s tenant=%s staged", run_id, tenant)
        return not done
