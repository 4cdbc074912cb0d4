"""A drop's sends (群发记录) and stopping one (停止群发).

A drop fires under a firing (its scheduled time, or "manual:<digest>" for 立即发送); each
firing made one task per guide (per group owner for groups) under the key
`drop:<drop>:<firing>:<guide>:<start>`. HQ sees each firing's tasks counted by state, with
what a 群发 firing left out as recorded with the firing (a firing made before that record
existed: as its tasks' details carry it), and can stop a firing: tasks not yet sent are
cancelled before any call, 群发 tasks WeCom holds that their guide has not sent are
cancelled in WeCom (cancel_groupmsg_send), and what a guide already sent stays sent. A
moment task WeCom already holds cannot be taken back (the facts name no call for it) and is
counted as sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from guidebot.db.models_sop import SopDropFiring, SopTask
from guidebot.sop.executors import MASS_KINDS

WAITING = ("queued", "sending")  # not in WeCom yet (or the call is in flight)


def firing_of(drop_id: str, key: str) -> str:
    """The firing a drop task's key names ("" for a key of another drop)."""
    prefix = f"drop:{drop_id}:"
    if not key.startswith(prefix):
        return ""
    parts = key[len(prefix):].rsplit(":", 2)  # a guide's userid holds no colon
    return parts[0] if len(parts) == 3 else ""


def stoppable(task: SopTask) -> bool:
    """A task a stop still changes: not sent yet, or a 群发 WeCom holds unconfirmed."""
    if task.status in WAITING:
        return True
    return task.status == "sent" and task.kind in MASS_KINDS and task.stopped_at is None


@dataclass
class Firing:
    """One firing of a drop, its tasks counted by state."""

    firing: str
    at: datetime
    tasks: int = 0
    recipients: int = 0
    reached: int = 0
    waiting: int = 0
    sent: int = 0
    confirmed: int = 0
    cancelled: int = 0
    failed: int = 0
    over_quota: int = 0  # customers left out: their 群发 quota was used
    duplicates: int = 0  # relations left out: the customer is reached through another guide
    stopped: bool = False
    recorded: bool = False  # the counts left out come from the firing's record
    open_ids: list[int] = field(default_factory=list)

    @property
    def can_stop(self) -> bool:
        return bool(self.open_ids)

    def add(self, task: SopTask) -> None:
        self.at = min(self.at, task.created_at)
        self.tasks += 1
        self.recipients += task.recipients
        self.reached += task.confirmed
        if task.status in WAITING:
            self.waiting += 1
        elif task.status in ("sent", "confirmed", "cancelled", "failed"):
            setattr(self, task.status, getattr(self, task.status) + 1)
        self.stopped = self.stopped or task.stopped_at is not None
        if not self.recorded and ('"over_quota"' in task.detail
                                  or '"duplicates"' in task.detail):  # a first chunk
            left_out = json.loads(task.detail)
            self.over_quota += int(left_out.get("over_quota", 0))
            self.duplicates += int(left_out.get("duplicates", 0))
        if stoppable(task) and task.id is not None:
            self.open_ids.append(task.id)

    def answer(self) -> dict[str, object]:
        return {"firing": self.firing, "at": self.at.isoformat(), "tasks": self.tasks,
                "recipients": self.recipients, "reached": self.reached,
                "waiting": self.waiting, "sent": self.sent, "confirmed": self.confirmed,
                "cancelled": self.cancelled, "failed": self.failed,
                "over_quota": self.over_quota, "duplicates": self.duplicates,
                "stopped": self.stopped, "can_stop": self.can_stop}


def firings(drop_id: str, tasks: Sequence[SopTask], recorded: Sequence[SopDropFiring], *,
            limit: int) -> list[Firing]:
    """The drop's firings among these tasks and records, newest first, at most `limit`; a
    recorded firing is listed even when it made no task (every customer left out)."""
    found: dict[str, Firing] = {}
    for record in recorded:
        found[record.firing] = Firing(record.firing, record.created_at,
                                      over_quota=record.over_quota,
                                      duplicates=record.duplicates, recorded=True)
    for task in tasks:
        name = firing_of(drop_id, task.key)
        if name:
            found.setdefault(name, Firing(name, task.created_at)).add(task)
    return sorted(found.values(), key=lambda f: (f.at, f.firing), reverse=True)[:limit]
