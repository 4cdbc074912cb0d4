"""Guide tasks for claimed rows: one per (group, guide), at most 10,000 customers (a group
step: 2,000 groups) each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.repo import sop_bulk as bulk

MAX_RECIPIENTS = 10_000  # add_msg_template external_userid limit (FACTS §3.5)
MAX_GROUPS = 2_000  # add_msg_template chat_id_list limit for chat_type "group"
BATCH_CHANNELS = ("guide_task", "reminder", "moment", "group_task")
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
    """Put the claimed rows in tasks, one per (step group, guide) and ≤ 10,000 customers, and
    map them to those; returns how many tasks were created.

    A guide's rows join the task of the same step still waiting to be sent when it has room
    (a wave of due steps planned over several passes stays one task). `claimed` names what
    the claim holds: "e" enrollment ids (their plans' task groups) or "s" step ids (the
    claim's groups); with the first id of a chunk it makes a new task's key unique, since a
    row is claimed only once (an enrollment once per step and round: a re-armed yearly
    enrollment's key names its round).
    """
    by = "plan" if claimed == "e" else "claim"
    found = await bulk.task_groups(session, by=by)
    waiting = await _waiting(session, tenant, groups, {g[1] for g in found})
    tasks, spans, grown = [], [], []
    for gid, guide, count, first in found:
        group = groups[int(gid)]
        most = MAX_GROUPS if group.channel == "group_task" else MAX_RECIPIENTS
        room = waiting.get((group, guide))
        if room is not None and room[1] + count <= most:
            spans.append({"gid": gid, "guide": guide, "lo": 0, "hi": _LAST_ID,
                          "task_id": room[0]})
            grown.append({"task_id": room[0], "more": int(count)})
            continue
        starts = ([int(first)] if count <= most else
                  await bulk.chunk_starts(session, by=by, gid=gid, guide=guide, size=most))
        ends = [s - 1 for s in starts[1:]] + [_LAST_ID]
        for n, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
            tasks.append(_task(tenant, group, guide, f"{claimed}{lo}",
                               min(most, int(count) - n * most), now))
            spans.append({"gid": gid, "guide": guide, "lo": lo, "hi": hi})
    if claimed == "e" and tasks:
        rounds = await bulk.claimed_rounds(session, ids=[int(str(t["first"])[1:])
                                                         for t in tasks])
        for task in tasks:
            cycle = rounds.get(int(str(task["first"])[1:]), 0)
            task["key"] = str(task["key"]) + (f"c{cycle}" if cycle else "")
    for task in tasks:
        del task["first"]
    ids = iter(await bulk.insert_tasks(session, tasks))
    await bulk.grow_tasks(session, rows=grown, now=now)
    await bulk.map_tasks(session, [span if "task_id" in span else {**span, "task_id": next(ids)}
                                   for span in spans])
    return len(tasks)


async def _waiting(session: AsyncSession, tenant: str, groups: Mapping[int, StepGroup],
                   guides: set[str]) -> dict[tuple[StepGroup, str], tuple[int, int]]:
    """(task id, recipients) of each (step group, guide) task still queued, locked so that a
    dispatcher cannot claim it while it grows."""
    if not guides:
        return {}
    wanted = {(f"sop:{g.sop_id}", g.version, g.step_index, g.channel, g.message): g
              for g in groups.values()}
    out: dict[tuple[StepGroup, str], tuple[int, int]] = {}
    for row in await bulk.queued_tasks(session, tenant=tenant,
                                       sources=sorted({k[0] for k in wanted})):
        group = wanted.get((row.source, row.version, row.step_index, row.kind, row.message))
        if group is not None and row.guide in guides:
            out.setdefault((group, row.guide), (int(row.id), int(row.recipients)))
    return out


def _task(tenant: str, group: StepGroup, guide: str, first: str, size: int,
          now: datetime) -> dict[str, object]:
    return {"tenant": tenant, "key": f"sop:{group.sop_id}:v{group.version}:"
            f"s{group.step_index}:{guide}:{first}", "kind": group.channel,
            "source": f"sop:{group.sop_id}", "version": group.version,
            "step_index": group.step_index, "guide": guide, "message": group.message,
            "recipients": size, "status": "queued", "msgid": "", "confirmed": 0,
            "reminders": 0, "detail": "", "last_error": "", "calling_at": None,
            "next_check_at": None, "created_at": now, "updated_at": now, "first": first}
