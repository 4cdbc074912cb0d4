"""Guide tasks for claimed rows: one per (group, guide), at most 10,000 customers each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.repo import sop_bulk as bulk

MAX_RECIPIENTS = 10_000  # add_msg_template external_userid limit (FACTS §3.5)
BATCH_CHANNELS = ("guide_task", "reminder", "moment")
_LAST_ID = 2**31 - 1


@dataclass(frozen=True)
class StepGroup:
    """What one task sends: a step of one SOP version."""

    sop_id: str
    version: int
    step_index: int
    channel: str
    message: str


async def make_tasks(session: AsyncSession, *, tenant: str, groups: Mapping[int, StepGroup],
                     claimed: str, now: datetime) -> int:
    """Create the tasks of the claim, one per (step group, guide) and ≤ 10,000 customers, and
    map its rows to them; returns how many.

    `claimed` names what the claim holds: "e" enrollment ids (their plans' task groups) or
    "s" step ids (the claim's groups). With the first id of each chunk it makes the task's
    key unique, since a row is claimed only once.
    """
    by = "plan" if claimed == "e" else "claim"
    tasks, spans = [], []
    for gid, guide, count, first in await bulk.task_groups(session, by=by):
        starts = ([int(first)] if count <= MAX_RECIPIENTS else
                  await bulk.chunk_starts(session, by=by, gid=gid, guide=guide,
                                          size=MAX_RECIPIENTS))
        ends = [s - 1 for s in starts[1:]] + [_LAST_ID]
        group = groups[int(gid)]
        for n, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
            size = min(MAX_RECIPIENTS, int(count) - n * MAX_RECIPIENTS)
            tasks.append({
                "tenant": tenant, "key": f"sop:{group.sop_id}:v{group.version}:"
                f"s{group.step_index}:{guide}:{claimed}{lo}", "kind": group.channel,
                "source": f"sop:{group.sop_id}", "version": group.version,
                "step_index": group.step_index, "guide": guide, "message": group.message,
                "recipients": size, "status": "queued", "msgid": "", "confirmed": 0,
                "reminders": 0, "detail": "", "last_error": "", "calling_at": None,
                "next_check_at": None, "created_at": now, "updated_at": now})
            spans.append({"gid": gid, "guide": guide, "lo": lo, "hi": hi})
    ids = await bulk.insert_tasks(session, tasks)
    await bulk.map_tasks(session, [{**span, "task_id": task_id}
                                   for span, task_id in zip(spans, ids, strict=True)])
    return len(ids)
