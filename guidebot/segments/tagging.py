"""批量打标签: a corp tag marked on every customer a segment (客户分群) finds now, through the
relation with their guide (the live relation they began last), one `mark_tag` each through
the outbox. The key names the segment, the tag and the customer, so a retry or a second click
queues nothing more; a customer who already carries the tag, or follows no guide, is skipped."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import tags as tags_repo
from guidebot.db.repo.console import FOLLOWING
from guidebot.errors import NotFound
from guidebot.outbox import CallStatus, Executor, Outbox, Prepared
from guidebot.segments.service import Segments

log = logging.getLogger(__name__)

PAGE = 1000  # customers read (and marks registered) at a time
IN_FLIGHT = 8  # mark_tag calls at a time


class SegmentTagging:
    def __init__(self, db: Database, outbox: Outbox, segments: Segments,
                 mark_call: Executor) -> None:
        self._db = db
        self._outbox = outbox
        self._segments = segments
        self._mark_call = mark_call

    async def mark(self, tenant: str, segment_id: int, tag_id: str) -> dict[str, Any]:
        """Counts: `matched` (the segment's customers now), `queued` (marks made now),
        `carrying` (skipped: the tag is on them), `no_guide` (skipped: no live relation),
        `repeated` (queued by an earlier click), `failed` (left to the outbox's retries)."""
        async with self._db.read() as s:
            tag = await tags_repo.live_tags(s, tenant=tenant, tag_id=tag_id)
        if not tag:
            raise NotFound(f"tag_id: no tag {tag_id}", code="tag_unknown", tag_id=tag_id)
        counts = dict.fromkeys(("matched", "queued", "carrying", "no_guide", "repeated",
                                "failed"), 0)
        after = ""
        while True:
            found = await self._segments.members(tenant, segment_id, limit=PAGE, after=after)
            await self._page(tenant, segment_id, tag_id, found.rows, counts)
            if found.next is None:
                break
            after = found.next
        log.info("segment tagged tenant=%s segment=%s tag=%s queued=%s", tenant, segment_id,
                 tag_id, counts["queued"])
        return {"segment": segment_id, "tag_id": tag_id, "tag": tag[0].name, **counts}

    async def _page(self, tenant: str, segment_id: int, tag_id: str,
                    rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
        counts["matched"] += len(rows)
        async with self._db.read() as s:
            carrying = await tags_repo.carrying(s, tenant=tenant, tag_id=tag_id,
                                                external_userids=[r["external_userid"]
                                                                  for r in rows])
        wanted = []
        for row in rows:
            customer = row["external_userid"]
            live = [f["guide"] for f in row["follows"] if f["status"] in FOLLOWING]
            if customer in carrying:
                counts["carrying"] += 1
            elif not live:
                counts["no_guide"] += 1
            else:
                key = f"mark_tag:segment:{segment_id}:{tag_id}:{customer}"[:160]
                wanted.append((key, "mark_tag", {
                    "userid": live[-1], "external_userid": customer, "add_tag": [tag_id],
                    "remove_tag": [], "ref": key}))
        async with self._db.write() as s:
            claimed = await self._outbox.register_many(s, tenant=tenant, rows=wanted)
        counts["repeated"] += len(wanted) - len(claimed)
        counts["queued"] += len(claimed)
        prepared = [Prepared(claimed[key], tenant, kind, partial(self._mark_call, tenant, payload))
                    for key, kind, payload in wanted if key in claimed]
        outcomes = await self._outbox.attempt_many(prepared, in_flight=IN_FLIGHT)
        counts["failed"] += sum(o.status is not CallStatus.DONE for o in outcomes)
