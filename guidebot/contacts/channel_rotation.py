"""Daily add limits of 多人活码 (channel codes with several guides): a guide who has added
`daily_limit` customers through the code today (the tenant's day) is taken out of the code
until the next day; when every guide has, the code's backup guides serve instead; a guide
the address book says left is taken out too. WeCom holds the members a contact way offers,
so each change is an update_contact_way call through the outbox, which sends the list the
database holds when it runs (a retry sends the newest). Checked after each add through such
a code, and every few minutes for the day's turn (ChannelRotation.refresh_all).

The rotation, 自动通过好友 (guidebot/contacts/auto_accept.py) and HQ's edit
(ChannelService.edit) all send a code's whole body to WeCom; each decides, sends and stores
what it sent in the code's turn (channels.code_turn: a lock of every process, PostgreSQL
advisory, in-process on SQLite's one writer process), reading the code again once it has the
turn; the outbox's later retries of the jobs' sends take the turn too (`executors`). So two
runs, or the rotation, a window's edge and an edit, never send the same change twice nor one
an older body after the other, and what the database holds of the body is what WeCom was last
told. Not covered: a retry of the code's row taken over from a process that died mid-send
(its lease ran out) may send while the dead process's call is still in flight at WeCom."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, time
from typing import Any

from guidebot.contacts.channels import code_turn, remark_of
from guidebot.contacts.relations import Relation
from guidebot.db.engine import Database
from guidebot.db.models import ChannelCode
from guidebot.db.repo import channels as repo
from guidebot.db.types import utcnow
from guidebot.outbox import CallStatus, Done, Executor, Outbox
from guidebot.settings import Settings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "channel_serving"  # the outbox kind (not a message: nothing is sent to anyone)


def serving_for(code: ChannelCode, adds_today: dict[str, int], left: set[str]) -> list[str]:
    """Who the code should offer now: its guides under the limit who still work here, else
    its backup guides who do, else (everyone gone) the guides as they are."""
    guides = [g for g in code.guide_list() if g not in left]
    under = [g for g in guides if adds_today.get(g, 0) < code.daily_limit]
    backup = [g for g in code.backup_list() if g not in left]
    return under or backup or code.guide_list()


class ChannelJob:
    """A job keeping what WeCom holds of channel codes in line with the tenant's day (its
    `clock` a test may replace), through the outbox."""

    def __init__(self, settings: Settings, db: Database, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings, self._db, self._outbox = settings, db, outbox
        self._client_for = client_for
        self.clock = clock

    def _concerns(self, code: ChannelCode) -> bool:
        """Whether the job looks after the code (as the database holds it now)."""
        raise NotImplementedError

    async def _decide(self, tenant: str, code: ChannelCode) -> bool:
        """One code brought up to date: whether WeCom was asked something."""
        raise NotImplementedError

    async def _decide_in_turn(self, tenant: str, code_id: int) -> bool:
        """`_decide` in the code's turn, shared by both jobs and HQ's edit of every process."""
        async with code_turn(self._db, tenant, code_id):
            return await self._decide_held(tenant, code_id)

    async def _decide_held(self, tenant: str, code_id: int) -> bool:
        """`_decide` by a caller holding the code's turn, on the code as it is now (another
        run may have changed it while the caller waited)."""
        async with self._db.read() as s:
            code = await repo.get(s, tenant=tenant, code_id=code_id)
        if code is None or not self._concerns(code):
            return False
        return await self._decide(tenant, code)

    def _in_turn(self, send: Executor) -> Executor:
        """`send` as the outbox's retries call it: in the code's turn. The first attempt,
        made by `_decide` inside the turn it holds, calls `send` itself (the turn's lock is
        not re-entrant)."""
        async def in_turn(tenant: str, payload: dict[str, Any]) -> dict[str, Any] | Done:
            async with code_turn(self._db, tenant, int(payload["code_id"])):
                return await send(tenant, payload)
        return in_turn

    async def _decide_each(self, tenant: str, codes: Sequence[ChannelCode]) -> int:
        changed = 0
        for code in codes:
            changed += await self._decide_in_turn(tenant, code.id or 0)
        return changed


class ChannelRotation(ChannelJob):

    async def after_add(self, relation: Relation) -> None:
        """An add through a code with a daily limit may take its guide out of it."""
        code = relation.code
        if code is not None and code.daily_limit and code.kind == "qr":
            await self.recheck(relation.tenant, code.id or 0)

    async def recheck(self, tenant: str, code_id: int) -> bool:
        """One code brought up to date (after an add through it)."""
        return await self._decide_in_turn(tenant, code_id)

    async def recheck_held(self, tenant: str, code_id: int) -> bool:
        """`recheck` by a caller holding the code's turn (HQ's edit, ChannelService)."""
        return await self._decide_held(tenant, code_id)

    def _concerns(self, code: ChannelCode) -> bool:
        return bool(code.daily_limit and code.config_id and code.kind == "qr"
                    and code.deleted_at is None)

    async def refresh_all(self, tenant: str) -> int:
        """Every limited code of the tenant brought up to date (a new day gives every guide
        their limit back); returns how many codes changed."""
        async with self._db.read() as s:
            codes = await repo.limited(s, tenant=tenant)
        return await self._decide_each(tenant, codes)

    def _day(self, tenant: str) -> tuple[str, datetime]:
        tz = self._settings.tenant(tenant).tz
        day = self.clock().astimezone(tz).date()
        return day.isoformat(), datetime.combine(day, time(0), tz)

    async def _decide(self, tenant: str, code: ChannelCode) -> bool:
        assert code.id is not None
        day, start = self._day(tenant)
        async with self._db.read() as s:
            adds = await repo.adds_since(s, tenant=tenant, code_id=code.id, since=start)
            left = await repo.inactive_among(s, tenant=tenant,
                                             userids=[*code.guide_list(), *code.backup_list()])
        serving = serving_for(code, adds, left)
        before = code.serving_list()
        if serving == before and code.serving_day == day:
            return False
        async with self._db.write() as s:
            await repo.set_serving(s, code_id=code.id, serving=serving, day=day)
        if serving == before:
            return False
        log.info("channel code %s tenant=%s: %d member(s) serve now (was %d)", code.id, tenant,
                 len(serving), len(before))
        digest = hashlib.sha256("|".join(serving).encode()).hexdigest()[:12]
        outcome = await self._outbox.run(
            tenant=tenant, key=f"{KIND}:{code.id}:{day}:{digest}:{secrets.token_hex(4)}",
            kind=KIND, payload={"code_id": code.id}, call=self.send)
        if outcome.status is not CallStatus.DONE:
            log.warning("channel code %s tenant=%s: update_contact_way not done (%s); the "
                        "outbox retries it", code.id, tenant, outcome.error)
        return True

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "channel_serving": the members the database holds for
        the code now, sent to WeCom."""
        async with self._db.read() as s:
            code = await repo.get(s, tenant=tenant, code_id=int(payload["code_id"]))
        if code is None:
            return {"gone": True}
        users = code.serving_list()
        answer = await self._client_for(tenant).update_contact_way(
            config_id=code.config_id, users=users, state=code.state, remark=remark_of(code),
            skip_verify=code.skip_verify_now)  # kept: whether left out resets it is not known
        return {**answer, "users": users}

    def executors(self) -> dict[str, Executor]:
        """The outbox's retries: `send` in the code's turn."""
        return {KIND: self._in_turn(self.send)}
