"""Handing a kf session to a person: kf/service_state/trans to 3 with the customer's exclusive
guide as servicer, else a guide of that guide's store, else to 2 (the pool); the guide gets an
app message with the router's two-line summary and a link to the handoff page (the customer's
latest messages, for the guide who took the session: web/pages/sidebar.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from guidebot.app_quota import AppQuota
from guidebot.chat.decision import CustomerContext
from guidebot.chat.reply_times import WECOM, change_of, handoff_open, with_servicer
from guidebot.chat.sending import reply_msgid
from guidebot.content.library import Library
from guidebot.content.render import render
from guidebot.db.engine import Database
from guidebot.db.models import BLANKED_PAYLOAD
from guidebot.db.models_kf import KfMessage
from guidebot.db.repo import console as console_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import kf as repo
from guidebot.db.repo import outbox as outbox_repo
from guidebot.errors import WeComApiError
from guidebot.outbox import Outbox
from guidebot.settings import Settings
from guidebot.wecom import kf as kf_api
from guidebot.wecom.client import WeComClient
from guidebot.wecom.kf import KfApi

log = logging.getLogger(__name__)

HUMAN, POOL = 3, 2
PAGE_MESSAGES = 30  # the handoff page shows the customer's latest messages
REPLIES_PER_MESSAGE = 5  # WeCom's limit per customer message (chat/sending.py)
MESSAGE = "kf_handoff"  # content_library/messages/kf_handoff.toml: the card's title
TITLE_BYTES, DESCRIPTION_BYTES = 128, 512  # textcard limits (FACTS §3.7)
SKIP_SERVICER = frozenset({kf_api.NOT_SERVICER, kf_api.SERVICER_STOPPED})


def _shown(body: dict[str, Any], card: dict[str, Any] | None) -> dict[str, Any]:
    """A kf/send_msg body as the handoff page shows it: its kind, its text or title, and a
    card as the customer saw it (KfCards.shown; None for a text)."""
    kind = "text" if _blanked(body) else str(body.get("msgtype", ""))
    part = body.get(kind)
    if not isinstance(part, dict):
        part = {}
    return {"kind": kind, "text": str(part.get("content") or part.get("title") or ""),
            "card": card}


_BLANKED = json.loads(BLANKED_PAYLOAD)


def _blanked(body: dict[str, Any]) -> bool:
    """A reply whose words data retention removed (outbox_days): shown as a removed text."""
    return body == _BLANKED


def _cut(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


@dataclass(frozen=True)
class Handed:
    servicer: str | None  # None: the pool (state 2) or nobody
    reason: str


class Handoff:
    def __init__(self, settings: Settings, db: Database, library: Library, outbox: Outbox,
                 client_for: Callable[[str], WeComClient],
                 api_for: Callable[[str], KfApi], *, quota: AppQuota,
                 cards: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        self._settings = settings
        self._cards = cards  # a sent body's card as the customer saw it (KfCards.shown)
        self._quota = quota
        self._db = db
        self.library = library
        self._outbox = outbox
        self._client_for = client_for
        self._api_for = api_for

    async def view(self, tenant: str, guide: str, msgid: str) -> dict[str, Any] | None:
        """What the handoff page shows the guide who took the session of message `msgid`
        (a handed customer message, or the event of WeCom's own handoff that intake
        recorded): the customer, their latest messages and the bot's replies, its cards as
        the customer saw them; None for anyone else (or no such handoff)."""
        async with self._db.read() as s:
            handed = await repo.handed_message(s, tenant=tenant, msgid=msgid, guide=guide)
            if handed is None:
                return None
            messages = await repo.latest_messages(s, tenant=tenant,
                                                  external_userid=handed.external_userid,
                                                  limit=PAGE_MESSAGES)
            contact = await contacts_repo.get_customer(s, tenant=tenant,
                                                       external_userid=handed.external_userid)
            names = await console_repo.guide_names(s, tenant=tenant)  # who took, who got it
            keys = {m.msgid: [f"kf_send:{reply_msgid(tenant, m.msgid, i)}"
                              for i in range(REPLIES_PER_MESSAGE)] for m in messages}
            sent = await outbox_repo.done_payloads(
                s, tenant=tenant, keys=[k for ks in keys.values() for k in ks])
        bodies = {k: json.loads(sent[k]) for ks in keys.values() for k in ks if k in sent}
        replies = {m: [_shown(b, None if _blanked(b) else self._cards(b))
                       for b in (bodies[k] for k in ks if k in bodies)]
                   for m, ks in keys.items()}
        wecom = handed.route == WECOM  # WeCom's own handoff that intake recorded
        return {"msgid": msgid, "external_userid": handed.external_userid,
                "origin": WECOM if wecom else "guidebot",
                "change": change_of(handed)[0] if wecom else 0,
                "name": contact.name if contact is not None else "",
                "handed_at": handed.handled_at or handed.send_time, "messages": messages,
                "replies": replies, "names": names}

    async def execute(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "kf_notify" (message/send to the guide), within the
        guide's app message budget (guidebot/app_quota.py: over it the outbox holds it)."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    async def already_with(self, tenant: str, message: KfMessage,
                           handed_now: str | None = None) -> str | None:
        """The servicer who has the session of customer message `message` when guidebot
        handed it to a person before (`handed_now`: this batch did; else what is stored
        says so, reply_times.with_servicer) and WeCom confirms the session is with a person
        (state 3: WeCom may have ended it without an event guidebot sees); else None."""
        servicer = handed_now
        if servicer is None:
            async with self._db.read() as s:
                stored = await repo.since_latest_handoff(
                    s, tenant=tenant, open_kfid=message.open_kfid,
                    external_userid=message.external_userid)
            here = (message.send_time, message.id or 0)
            servicer = with_servicer([m for m in stored if (m.send_time, m.id or 0) < here],
                                     message.send_time)
        if servicer is None:
            return None
        state, now_with = await self._api_for(tenant).service_state(
            open_kfid=message.open_kfid, external_userid=message.external_userid)
        return (now_with or servicer) if state == HUMAN else None

    async def held(self, tenant: str, event: KfMessage, handed_now: bool = False) -> bool:
        """Whether a handoff record holds the conversation of session_status_change `event`
        (this batch handed it, or what is stored before the event says so:
        reply_times.handoff_open); if not, the event is WeCom's own handoff to record."""
        if handed_now:
            return True
        async with self._db.read() as s:
            stored = await repo.since_latest_handoff_record(
                s, tenant=tenant, open_kfid=event.open_kfid,
                external_userid=event.external_userid, before=event.send_time)
        here = (event.send_time, event.id or 0)
        return handoff_open([m for m in stored if (m.send_time, m.id or 0) < here],
                            event.send_time)

    async def hand(self, tenant: str, open_kfid: str, kf_userid: str, msgid: str,
                   customer: CustomerContext, summary: str) -> Handed:
        api = self._api_for(tenant)
        for servicer in await self._candidates(tenant, customer):
            try:
                await api.trans(open_kfid=open_kfid, external_userid=kf_userid, state=HUMAN,
                                servicer=servicer)
            except WeComApiError as exc:
                if exc.errcode in SKIP_SERVICER:
                    log.info("kf handoff tenant=%s: servicer skipped errcode=%s", tenant,
                             exc.errcode)
                    continue
                if exc.errcode == kf_api.BAD_TRANSITION:
                    return await self._stuck(tenant, open_kfid, kf_userid)
                raise
            await self._notify(tenant, servicer, msgid, customer, summary)
            return Handed(servicer, "handed to a servicer")
        try:
            await api.trans(open_kfid=open_kfid, external_userid=kf_userid, state=POOL)
        except WeComApiError as exc:
            if exc.errcode == kf_api.BAD_TRANSITION:
                return await self._stuck(tenant, open_kfid, kf_userid)
            raise
        return Handed(None, "no guide could take it: queued in the pool (state 2)")

    async def _stuck(self, tenant: str, open_kfid: str, kf_userid: str) -> Handed:
        state, servicer = await self._api_for(tenant).service_state(
            open_kfid=open_kfid, external_userid=kf_userid)
        return Handed(servicer or None, f"session state {state} allows no handoff")

    async def _candidates(self, tenant: str, customer: CustomerContext) -> list[str]:
        """The exclusive guide, then the other guides of their store ("on duty" is not known
        to guidebot: any guide of the store; WeCom refuses one who is not 接待中)."""
        found = [customer.exclusive_guide] if customer.exclusive_guide else []
        if customer.store_id:
            async with self._db.read() as s:
                found += [g for g in await repo.store_guides(s, tenant=tenant,
                                                             store_id=customer.store_id)
                          if g not in found]
        return found

    async def _notify(self, tenant: str, guide: str, msgid: str, customer: CustomerContext,
                      summary: str) -> None:
        settings = self._settings.tenant(tenant)
        async with self._db.read() as s:
            names = await contacts_repo.guide_names(s, tenant=tenant, userids=[guide])
        guide_name, store_name = names.get(guide, ("", ""))
        message = self.library.messages.get(MESSAGE)
        values = {"customer": {"name": customer.name or customer.external_userid},
                  "guide": {"name": guide_name, "userid": guide}, "store": {"name": store_name}}
        title = render(message.text, values) if message and message.text else ""
        url = (f"{self._settings.server.public_url}/sidebar/{settings.id}/handoff/"
               f"{quote(msgid, safe='')}")
        body = {"touser": guide, "msgtype": "textcard", "textcard": {
            "title": _cut(title or customer.external_userid, TITLE_BYTES),
            "description": _cut(summary or title, DESCRIPTION_BYTES), "url": url}}
        outcome = await self._outbox.run(tenant=tenant, key=f"kf_notify:{msgid}"[:160],
                                         kind="kf_notify", payload=body,
                                         call=self.execute)
        if outcome.held_until is not None:  # the guide's app message budget is used up
            log.info("kf handoff notice to the guide held tenant=%s guide=%s", tenant, guide)
        elif outcome.status not in ("done", "duplicate"):
            log.warning("kf handoff notice to the guide %s tenant=%s", outcome.status, tenant)
