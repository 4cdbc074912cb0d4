"""Replies through kf/send_msg within WeCom's rules: only in session states 0/1 (0 moves to 1
when the bot answers), at most 5 messages after each customer message and only within 48 h of
it. guidebot counts itself (kf_sessions) and stops before WeCom would refuse; a refusal that
still comes (95001/95002/95018) is recorded as the message's reason, and a message not sent
(refused, or after one that failed) is taken back out of the count."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.engine import Database
from guidebot.db.group_commit import SharedTransactions
from guidebot.db.repo import kf as repo
from guidebot.db.types import utcnow
from guidebot.db.writes import apply
from guidebot.errors import WeComApiError
from guidebot.outbox import CallStatus, Outbox, Prepared
from guidebot.wecom import kf as kf_api
from guidebot.wecom.kf import KfApi

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=48)
ANSWERABLE = (0, 1)  # 0 未处理, 1 智能助手: the only states kf/send_msg works in
UNTOUCHED, ASSISTANT = 0, 1
TEXT_MAX_BYTES = 2048


def reply_msgid(tenant: str, msgid: str, index: int) -> str:
    """Our msgid for the index-th reply to a message: ≤ 32 of [0-9a-zA-Z_-], the same on a
    retry (FACTS-next §A.4: set it yourself for idempotency)."""
    return "gb" + hashlib.sha256(f"{tenant}:{msgid}:{index}".encode()).hexdigest()[:30]


@dataclass(frozen=True)
class Sent:
    count: int
    reason: str  # "" when every message went out


class KfSender:
    def __init__(self, db: Database, outbox: Outbox, api_for: Callable[[str], KfApi],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._outbox = outbox
        self._group = SharedTransactions(db)  # concurrent customers' replies share transactions
        self._api_for = api_for
        self._clock = clock

    async def execute(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "kf_send"."""
        return await self._api_for(tenant).send_msg(payload)

    async def state(self, tenant: str, open_kfid: str, external_userid: str) -> int:
        state, _ = await self._api_for(tenant).service_state(open_kfid=open_kfid,
                                                             external_userid=external_userid)
        return state

    async def send(self, tenant: str, open_kfid: str, external_userid: str, msgid: str,
                   messages: list[dict[str, Any]]) -> Sent:
        """Send `messages` (kf/send_msg bodies without touser/open_kfid/msgid) in order: each
        counted against the 5-message limit and claimed in the outbox in one transaction,
        sent one after another until one fails, and the sent ones recorded in one more."""
        if not messages:
            return Sent(0, "nothing to send")
        state = await self.state(tenant, open_kfid, external_userid)
        if state not in ANSWERABLE:
            return Sent(0, f"session state {state}: not answerable by the API")
        bodies = [{"touser": external_userid, "open_kfid": open_kfid,
                   "msgid": reply_msgid(tenant, msgid, index), **message}
                  for index, message in enumerate(messages)]
        release = repo.release_send(tenant=tenant, open_kfid=open_kfid,
                                    external_userid=external_userid)
        now = self._clock()

        async def reserve(s: AsyncSession) -> list[int | None]:
            items: list[int | None] = []  # per reserved message: its outbox row (None: a
            for body in bodies:           # duplicate)
                if not await repo.reserve_send(
                        s, tenant=tenant, open_kfid=open_kfid, external_userid=external_userid,
                        since=now - WINDOW, now=now):
                    break
                item_id = await self._outbox.register(
                    s, tenant=tenant, key=f"kf_send:{body['msgid']}", kind="kf_send",
                    payload=body, leased=True)
                if item_id is None:  # an earlier attempt owns (and counted) this message
                    await apply(s, [release])
                items.append(item_id)
            return items

        items = await self._group.run(reserve)
        if items and state == UNTOUCHED:
            state = await self._take(tenant, open_kfid, external_userid)
        todo = [(index, item_id) for index, item_id in enumerate(items) if item_id is not None]
        outcomes = await self._outbox.attempt_in_order([
            Prepared(item_id, tenant, "kf_send", functools.partial(self.execute, tenant,
                                                                   bodies[index]))
            for index, item_id in todo], record=self._group.run)
        releases, failed = [], None
        for position, (index, _) in enumerate(todo):
            if position >= len(outcomes):  # withdrawn after a failure: never sent
                releases.append(release)
                continue
            outcome = outcomes[position]
            if outcome.status == CallStatus.DONE:
                continue
            errcode = (outcome.result or {}).get("errcode")
            if errcode in kf_api.REFUSED_SEND:
                releases.append(release)
            failed = Sent(index, f"send_msg {outcome.status} errcode={errcode}")
        if releases:
            async with self._db.write() as s:
                await apply(s, releases)
        if failed is not None:
            return failed
        if len(items) < len(messages):
            return Sent(len(items), "limit: 5 messages per customer message within 48 h")
        return Sent(len(messages), "")

    async def _take(self, tenant: str, open_kfid: str, external_userid: str) -> int:
        """0 → 1 (由智能助手接待) when the bot answers; a refusal leaves it at 0, where the API
        may answer too."""
        try:
            await self._api_for(tenant).trans(open_kfid=open_kfid,
                                              external_userid=external_userid, state=ASSISTANT)
        except WeComApiError as exc:
            log.warning("kf session stays untouched tenant=%s errcode=%s", tenant, exc.errcode)
            return UNTOUCHED
        return ASSISTANT


def text_message(text: str) -> dict[str, Any]:
    content = text.encode()[:TEXT_MAX_BYTES].decode(errors="ignore")
    return {"msgtype": "text", "text": {"content": content}}
