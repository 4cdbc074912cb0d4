"""超时未回复提醒: when a customer of a 微信客服 session handed to a guide has waited
`[tenants.<id>.alerts] handoff_reply_minutes` for a reply (chat/reply_times.py says who is
waiting and since when), the servicer who has the session gets one app message: the
customer's name (else their id), how long, and a link to the handoff page.

A job runs the check every minute (guidebot/jobs.py). Each notice goes through the outbox
under `handoff_reply:<servicer>:<the first unanswered customer message>`, so it is sent once
per waiting stretch and servicer whatever runs the check (a second run, another process): a
reply ends the stretch, and the customer's next message starts a new one. A session
transferred to another servicer keeps the customer's wait, and the new servicer is told. A
customer waiting in the pool (nobody took guidebot's handoff yet) has nobody to tell; the
servicer who takes the session is told once the wait passes the threshold. A session
WeCom queued by itself and a servicer took has a handoff page too (the event's: intake
records it as a handoff of route "wecom").
Like every app message it draws from the guide's app message budget (app_quota.py)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from guidebot.app_quota import AppQuota, app_text
from guidebot.chat.reply_times import POOL, Handed, ReplyTimes
from guidebot.content.chat import ChatContent
from guidebot.db.engine import Database
from guidebot.db.repo import kf as kf_repo
from guidebot.db.repo import outbox as outbox_repo
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "handoff_remind"  # the outbox kind (an app message in usage metering)
PREFIX = "handoff_reply"  # of the outbox key
KEY_CHARS = 160  # the outbox key column


def outbox_key(servicer: str, msgid: str) -> str:
    """`handoff_reply:<servicer>:<msgid>`; ids too long for the key column are hashed."""
    key = f"{PREFIX}:{servicer}:{msgid}"
    if len(key) <= KEY_CHARS:
        return key
    ident = hashlib.sha256(f"{servicer}\x1f{msgid}".encode()).hexdigest()[:40]
    return f"{PREFIX}:h{ident}"


class HandoffReminders:
    def __init__(self, settings: Settings, db: Database, content: ChatContent,
                 times: ReplyTimes, outbox: Outbox, client_for: Callable[[str], WeComClient],
                 *, quota: AppQuota) -> None:
        self._settings, self._db, self._content, self._times = settings, db, content, times
        self._outbox, self._client_for, self._quota = outbox, client_for, quota

    async def run(self, tenant_id: str) -> int:
        """Tell every servicer whose customer has waited past the threshold, once per
        stretch; how many notices were handed to the outbox now."""
        tenant = self._settings.tenant(tenant_id)
        minutes = tenant.alerts.handoff_reply_minutes
        if not minutes or not tenant.kf.open_kfids:  # off, or no 微信客服 account read
            return 0
        now = self._times.clock()
        due = {outbox_key(t.servicer, t.waiting.msgid): t
               for t in await self._times.open_turns(tenant_id)
               if t.servicer != POOL and t.waiting is not None
               and (t.waited_s(now) or 0) >= minutes * 60}
        if not due:
            return 0
        async with self._db.read() as s:
            sent = await outbox_repo.ids_by_key(s, tenant=tenant_id, keys=list(due))
            customers = await kf_repo.customers(s, tenant=tenant_id, external_userids=list(
                {t.external_userid for t in due.values()}))
        count = 0
        for key, turn in due.items():
            if key in sent:
                continue
            contact = customers.get(turn.external_userid)
            name = contact.name if contact is not None and contact.name else turn.external_userid
            text = self._text(tenant_id, turn, name, (turn.waited_s(now) or 0) // 60)
            outcome = await self._outbox.run(
                tenant=tenant_id, key=key, kind=KIND, call=self.send,
                payload=app_text(turn.servicer, text))
            count += 1
            log.info("handoff reply reminder tenant=%s guide=%s customer=%s send=%s",
                     tenant_id, turn.servicer, turn.external_userid, outcome.status)
        return count

    def _text(self, tenant_id: str, turn: Handed, name: str, minutes: int) -> str:
        url = (f"{self._settings.server.public_url}/sidebar/{tenant_id}/handoff/"
               f"{quote(turn.msgid, safe='')}")
        return self._content.text("handoff_reply_notice", customer=name, minutes=minutes,
                                  url=url)

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "handoff_remind": message/send to the servicer, within
        their app message budget."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send}
