"""微信客服 intake: `kf_msg_or_event` → page kf/sync_msg from the stored cursor → each message
once (unique msgid) → a reply, a handoff or a recorded reason.

Paging an account holds its cursor: an asyncio lock in the process and, on PostgreSQL, the
cursor row locked FOR UPDATE in the transaction that calls sync_msg and stores the page and the
next cursor, so several processes never read the same page twice and none is skipped. (SQLite
runs one process; its writer lock is not held across the HTTP call, because the token store
may need to write during it.) A cursor is created when guidebot starts with the account
configured (or at its first event); messages sent before that moment (sync_msg without a
cursor returns about 3 days of them) are recorded as skipped, never answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from guidebot.app_quota import AppQuota
from guidebot.chat.cards import KfCards
from guidebot.chat.customers import Customers, Writer
from guidebot.chat.decision import CustomerContext, Decision, Inbound, ReplyRouter, Route
from guidebot.chat.entries import KfEntries, event_of
from guidebot.chat.handoff import Handoff
from guidebot.chat.opt_out import OptOuts
from guidebot.chat.reply_times import (
    KNOWN_CHANGES,
    NEW_SERVICER,
    SESSION_EVENT,
    WECOM,
    change_of,
    change_type,
)
from guidebot.chat.sending import KfSender, text_message
from guidebot.chat.watch import ChatWatch
from guidebot.contacts.auto_tags import AutoTagger
from guidebot.content.library import Library
from guidebot.db.engine import Database
from guidebot.db.models_kf import KfCursor, KfMessage
from guidebot.db.repo import kf as repo
from guidebot.db.types import utcnow
from guidebot.db.writes import apply
from guidebot.errors import WeComApiError, WeComError
from guidebot.events import KfMsgOrEvent
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings
from guidebot.wecom.client import WeComClient
from guidebot.wecom.kf import KfApi

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=5)
CLAIMS_KEPT = 10_000
MAX_PAGES = 100  # of up to 1,000 messages each
IN_FLIGHT = 64  # customers handled at once (their model calls and sends overlap)
TOKEN_FRESH = timedelta(minutes=9)  # the callback Token lives 10 minutes (FACTS-next §A.3)
CUSTOMER, SYSTEM, SERVICER = 3, 4, 5  # sync_msg item origin
SENDING_ROUTES = (Route.REPLY, Route.FAQ, Route.CATALOG, Route.LLM, Route.OPT_OUT,
                  Route.OPT_IN)


@dataclass(frozen=True)
class Outcome:
    status: str  # replied | handoff | skipped | failed
    route: str
    reason: str
    guide: str | None = None


class KfService:
    def __init__(self, settings: Settings, db: Database, library: Library, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], *, router: ReplyRouter,
                 cards: KfCards, opt_outs: OptOuts, quota: AppQuota, auto_tags: AutoTagger,
                 watch: ChatWatch | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock
        self._apis: dict[str, KfApi] = {}
        self._client_for = client_for
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._cursors: set[tuple[str, str]] = set()  # accounts whose cursor row exists
        self._pulled: dict[tuple[str, str], float] = {}  # when the last full pull started
        self._stored: dict[tuple[str, str], float] = {}  # when a pull last stored a page
        self._scanned: dict[tuple[str, str], float] = {}  # when a look for open ones began
        # messages this process claimed (being handled or done, the latest CLAIMS_KEPT):
        # events whose pending list was read before they were claimed skip them without a
        # write (a burst of 50 customers would otherwise cost 50 × 50 claim attempts)
        self._claimed: OrderedDict[int, None] = OrderedDict()
        self.router = router  # the reply router (guidebot/chat/routing.py)
        self.cards = cards
        self.opt_outs = opt_outs
        self.auto_tags = auto_tags  # 自动打标签 from the customer's words
        self.watch = watch  # 会话质检: new messages flagged as they are stored
        self.customers = Customers(db, self.api)
        self.sender = KfSender(db, outbox, self.api, clock)
        self.handoff = Handoff(settings, db, library, outbox, client_for, self.api,
                               quota=quota, cards=cards.shown)
        self.entries = KfEntries(settings, db, library, outbox, self.api, clock)

    def api(self, tenant: str) -> KfApi:
        if tenant not in self._apis:
            self._apis[tenant] = KfApi(self._client_for(tenant))
        return self._apis[tenant]

    def executors(self) -> dict[str, Executor]:
        return {"kf_send": self.sender.execute, "kf_welcome": self.entries.execute,
                "kf_notify": self.handoff.execute}

    async def ensure_cursors(self) -> None:
        """At start: every configured account has a cursor; its creation time is the
        boundary before which messages are never answered."""
        now = self._clock()
        async with self._db.write() as s:
            for tenant in self._settings.tenants.values():
                for open_kfid in tenant.kf.open_kfids:
                    await repo.ensure_cursor(s, tenant=tenant.id, open_kfid=open_kfid, now=now)

    # -- intake ---------------------------------------------------------------------------

    async def on_event(self, event: KfMsgOrEvent) -> int:
        """Read and answer what the event announces; the number of messages handled."""
        configured = self._settings.tenant(event.tenant).kf.open_kfids
        if event.open_kfid and event.open_kfid not in configured:
            log.info("kf event tenant=%s for an account not configured; ignored", event.tenant)
            return 0
        # Without OpenKfId (older payloads, FACTS-next §A.2) every configured account is read;
        # whether the Token then applies to each of them is unconfirmed.
        accounts = [event.open_kfid] if event.open_kfid else list(configured)
        fresh = self._clock() - event.created_at < TOKEN_FRESH
        handled = 0
        for open_kfid in accounts:
            await self.pull(event.tenant, open_kfid, event.token if fresh else "")
            handled += await self.handle_pending(event.tenant, open_kfid)
        return handled

    def _lock(self, tenant: str, open_kfid: str) -> asyncio.Lock:
        return self._locks.setdefault((tenant, open_kfid), asyncio.Lock())

    async def pull(self, tenant: str, open_kfid: str, token: str) -> None:
        """Page sync_msg until has_more is 0 (a page may be empty with has_more 1), at most
        MAX_PAGES pages per event: the rest is read at the next event from the stored cursor.

        Events that come while the account is paged wait for the lock; one that came before
        the start of a pull that read to the end needs no pull of its own (WeCom raises the
        callback once the message can be read), so a burst of customers costs a few pulls,
        not one per message."""
        key, arrived = (tenant, open_kfid), time.monotonic()
        if key not in self._cursors:
            async with self._db.write() as s:
                await repo.ensure_cursor(s, tenant=tenant, open_kfid=open_kfid,
                                         now=self._clock())
            self._cursors.add(key)
        async with self._lock(tenant, open_kfid):
            if self._pulled.get(key, float("-inf")) > arrived:
                return
            started = time.monotonic()
            for _ in range(MAX_PAGES):
                more = await self._page(tenant, open_kfid, token)
                self._stored[key] = time.monotonic()
                if not more:
                    self._pulled[key] = started
                    return
            log.warning("kf tenant=%s: still more after %d pages; continued at the next event",
                        tenant, MAX_PAGES)

    async def _page(self, tenant: str, open_kfid: str, token: str) -> bool:
        if self._db.is_sqlite:
            async with self._db.read() as s:
                cursor = await repo.lock_cursor(s, tenant=tenant, open_kfid=open_kfid)
            assert cursor is not None
            answer = await self._sync(tenant, open_kfid, cursor.cursor, token)
            async with self._db.write() as s:
                await self._store(s, tenant, open_kfid, cursor, answer)
        else:
            async with self._db.write() as s:
                cursor = await repo.lock_cursor(s, tenant=tenant, open_kfid=open_kfid)
                assert cursor is not None
                answer = await self._sync(tenant, open_kfid, cursor.cursor, token)
                await self._store(s, tenant, open_kfid, cursor, answer)
        return bool(answer.get("has_more"))

    async def _sync(self, tenant: str, open_kfid: str, cursor: str,
                    token: str) -> dict[str, Any]:
        api = self.api(tenant)
        try:
            return await api.sync_msg(cursor=cursor, token=token, open_kfid=open_kfid)
        except WeComApiError as exc:
            if not token:
                raise
            # A stale or refused Token: read without it (stricter rate limits, same data).
            log.info("kf sync_msg tenant=%s refused the token errcode=%s; retrying without",
                     tenant, exc.errcode)
            return await api.sync_msg(cursor=cursor, token="", open_kfid=open_kfid)

    async def _store(self, s: Any, tenant: str, open_kfid: str, cursor: KfCursor,
                     answer: Mapping[str, Any]) -> None:
        now = self._clock()
        rows = [self._row(tenant, open_kfid, cursor, item, now)
                for item in answer.get("msg_list") or [] if isinstance(item, dict)]
        new = set(await repo.insert_messages(s, rows=rows))
        if self.watch is not None and new:  # once per message: only a new one is flagged
            await self.watch.flag(s, tenant, [r for r in rows if r["msgid"] in new], now)
        await apply(s, [write for row in rows
                        if row["msgid"] in new and row["origin"] == CUSTOMER
                        and row["external_userid"]
                        for write in repo.customer_wrote(
                            tenant=tenant, open_kfid=row["open_kfid"],
                            external_userid=row["external_userid"], at=row["send_time"],
                            now=now)])
        await repo.set_cursor(s, tenant=tenant, open_kfid=open_kfid,
                              cursor=str(answer.get("next_cursor") or cursor.cursor), now=now)

    def _row(self, tenant: str, open_kfid: str, cursor: KfCursor, item: Mapping[str, Any],
             now: datetime) -> dict[str, Any]:
        msgtype = str(item.get("msgtype", ""))
        event = _obj(item, "event")
        text = _obj(item, "text")
        sent_at = datetime.fromtimestamp(int(item.get("send_time") or 0), UTC)
        account = str(item.get("open_kfid") or open_kfid)
        status, reason = "pending", ""
        if account != open_kfid:
            status, reason = "skipped", "another account's message"
        elif sent_at < cursor.created_at.replace(microsecond=0):  # send_time is whole seconds
            status, reason = "skipped", "before the cursor was created (cold start backlog)"
        return {
            "tenant": tenant, "open_kfid": account, "msgid": str(item.get("msgid", ""))[:128],
            "external_userid": str(item.get("external_userid", ""))[:128],
            "origin": int(item.get("origin") or 0), "msgtype": msgtype[:32],
            "event_type": str(event.get("event_type", ""))[:32] if event else "",
            # the customer's text for the console (never logged); an event's fields
            "text": (str(text.get("content", "")) if msgtype == "text"
                     else json.dumps(event, ensure_ascii=False) if event else ""),
            "send_time": sent_at, "status": status, "route": "", "reason": reason,
            "guide": None, "servicer_userid": _servicer(item, event), "received_at": now,
            "handled_at": now if status != "pending" else None}

    async def handle_pending(self, tenant: str, open_kfid: str) -> int:
        """Handle the account's open messages: those this process has not taken yet are
        claimed in one transaction (one worker, one process each; another worker's are left
        to it), their writers looked up together, each customer's messages handled in order
        while customers go at once (IN_FLIGHT at a time), and the outcomes recorded in one
        transaction. A claim older than STALE_CLAIM belonged to a process that died: taken
        over (its replies keep their msgid and outbox key, so none goes out twice)."""
        key = (tenant, open_kfid)
        if self._scanned.get(key, float("-inf")) > self._stored.get(key, float("-inf")):
            # a look that began after this process last stored a page saw all it stored
            # (the burst's callbacks after the first few cost no read)
            return 0
        self._scanned[key] = time.monotonic()
        stale_before = self._clock() - STALE_CLAIM
        async with self._db.read() as s:
            open_ids = await repo.open_message_ids(s, tenant=tenant, open_kfid=open_kfid,
                                                   stale_before=stale_before)
        fresh = [i for i in open_ids if i not in self._claimed]
        if not fresh:
            return 0
        for message_id in fresh:  # before the write: this process tries each once
            self._claimed[message_id] = None
        while len(self._claimed) > CLAIMS_KEPT:
            self._claimed.popitem(last=False)
        async with self._db.write() as s:
            claimed = await repo.claim_messages(s, message_ids=fresh, now=self._clock(),
                                                stale_before=stale_before)
        if not claimed:
            return 0
        by_customer: dict[str, list[KfMessage]] = {}
        for message in claimed:
            by_customer.setdefault(message.external_userid, []).append(message)
        outcomes: dict[int, Outcome] = {}
        handed_now: dict[tuple[str, str], str] = {}  # conversation → servicer, this batch's
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one_customer(messages: list[KfMessage]) -> None:
            async with gate:
                for message in messages:
                    assert message.id is not None
                    try:
                        outcomes[message.id] = await self._handle(tenant, message, writers,
                                                                   handed_now)
                    except WeComError as exc:
                        outcomes[message.id] = Outcome(
                            "failed", "", f"WeCom errcode={exc.errcode} at {exc.path}")

        try:
            writers = dict(await self.customers.writers(tenant, [
                m.external_userid for m in claimed if _needs_writer(m)]))
            results = await asyncio.gather(*(one_customer(m) for m in by_customer.values()),
                                           return_exceptions=True)
        finally:
            await self._finish(tenant, claimed, outcomes)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return len(claimed)

    async def _finish(self, tenant: str, claimed: list[KfMessage],
                      outcomes: Mapping[int, Outcome]) -> None:
        """Every claimed message's outcome in one transaction; one without (its handling
        raised, or was cancelled) goes back to pending for a retry of the event to take."""
        now = self._clock()
        writes = []
        for message in claimed:
            assert message.id is not None
            outcome = outcomes.get(message.id)
            if outcome is None:
                self._claimed.pop(message.id, None)
                self._scanned.pop((tenant, message.open_kfid), None)  # look again next time
                outcome = Outcome("pending", "", "")
            writes.append(repo.finished(message_id=message.id, status=outcome.status,
                                        route=outcome.route, reason=outcome.reason,
                                        guide=outcome.guide, now=now))
        async with self._db.write() as s:
            await apply(s, writes)
        for message in claimed:
            outcome = outcomes.get(message.id or 0)
            if outcome is not None:
                log.info("kf message id=%s tenant=%s: %s %s", message.id, tenant,
                         outcome.status, outcome.route or "-")

    async def _handle(self, tenant: str, message: KfMessage,
                      writers: MutableMapping[str, Writer],
                      handed_now: MutableMapping[tuple[str, str], str]) -> Outcome:
        if message.origin == SERVICER:
            return Outcome("skipped", "", "a servicer's message from the WeCom client")
        if message.origin == SYSTEM or message.msgtype == "event":
            if message.event_type == "msg_send_fail":
                failed = event_of(message.text)  # fail_type: FACTS-next §A.3 table
                return Outcome("skipped", "", f"event msg_send_fail: msgid="
                               f"{failed.get('fail_msgid', '')} fail_type="
                               f"{failed.get('fail_type', '')}")
            if message.event_type == SESSION_EVENT:
                return await self._session_change(tenant, message, handed_now)
            if message.event_type != "enter_session":
                return Outcome("skipped", "", f"event {message.event_type or '?'}")
            writer = writers[message.external_userid]
            entered = await self.entries.entered(tenant, message.open_kfid, writer,
                                                 event_of(message.text), message.send_time)
            return Outcome("replied" if entered.welcomed else "skipped", "welcome",
                           entered.reason, entered.guide)
        if message.msgtype != "text":
            return Outcome("skipped", Route.IGNORED, f"msgtype {message.msgtype} not answered")
        writer = writers[message.external_userid]
        # the tags the words earn are staged first (one short write; marked by the inbox)
        await self.auto_tags.heard(tenant, external_userid=writer.context.external_userid,
                                   contact=writer.contact, msgid=message.msgid,
                                   text=message.text, at=message.send_time)
        decision = await self.router.decide(Inbound(
            tenant=tenant, open_kfid=message.open_kfid, msgid=message.msgid, text=message.text,
            customer=writer.context))
        if decision.route == Route.OPT_IN:  # the customer's own request undoes it
            done = await self.opt_outs.undo(tenant, writer.context.external_userid,
                                            operator="customer")
        elif decision.route == Route.OPT_OUT:
            done = await self.opt_outs.opt_out(tenant, writer, message.msgid)
        else:
            return await self._act(tenant, message, writer.context, decision, handed_now)
        # the customer's later messages of this batch see it (退订 then 订阅 in one sync)
        writers[message.external_userid] = replace(writer, context=replace(
            writer.context, opted_out=decision.route == Route.OPT_OUT))
        outcome = await self._act(tenant, message, writer.context, decision, handed_now)
        return Outcome(outcome.status, outcome.route, f"{outcome.reason}; {done}", outcome.guide)

    async def _session_change(self, tenant: str, message: KfMessage,
                              handed_now: Mapping[tuple[str, str], str]) -> Outcome:
        """session_status_change (WeCom's sync_msg doc, as the sandbox follows it:
        change_type 1 a servicer took the session from the pool, 2 a transfer, 3 the end).
        A take or a transfer of a session no handoff record holds (WeCom queued the customer
        by its own routing) is recorded as a handoff of route "wecom" to the new servicer:
        the handoff page, the reminder and 接待时效 follow it like guidebot's
        (chat/reply_times.py)."""
        change, new = change_of(message)
        if change not in KNOWN_CHANGES:
            # change_type 4 (or any other) is not in the facts: stored as it came, no
            # servicer taken from it, nothing else done; logged by id only
            log.warning("kf session_status_change id=%s tenant=%s: unknown change_type=%s",
                        message.id, tenant, change)
            return Outcome("skipped", "", f"event {SESSION_EVENT}: change_type {change} "
                           "unknown (not in the facts): recorded only")
        if not new:
            return Outcome("skipped", "", f"event {SESSION_EVENT}: change_type {change}")
        conversation = (message.open_kfid, message.external_userid)
        if await self.handoff.held(tenant, message, conversation in handed_now):
            return Outcome("skipped", "", f"event {SESSION_EVENT}: change_type {change} "
                           f"to {new}, continuing a handoff")
        return Outcome("handoff", WECOM, f"event {SESSION_EVENT}: change_type {change} to "
                       f"{new}, a session guidebot did not hand: WeCom's own handoff", new)

    async def _act(self, tenant: str, message: KfMessage, customer: CustomerContext,
                   decision: Decision,
                   handed_now: MutableMapping[tuple[str, str], str]) -> Outcome:
        route = str(decision.route)
        if decision.route == Route.HANDOFF:
            conversation = (message.open_kfid, message.external_userid)
            servicer = await self.handoff.already_with(tenant, message,
                                                       handed_now.get(conversation))
            if servicer is not None:
                # no second trans, no second notice; in state 3 kf/send_msg would answer 95018
                return Outcome("skipped", route, f"already with {servicer}: not handed again "
                               f"(session state 3); {decision.reason}")
            if decision.text:
                await self.sender.send(tenant, message.open_kfid, message.external_userid,
                                       message.msgid, [text_message(decision.text)])
            handed = await self.handoff.hand(tenant, message.open_kfid,
                                             message.external_userid, message.msgid, customer,
                                             decision.summary)
            if handed.servicer is not None:
                handed_now[conversation] = handed.servicer
            return Outcome("handoff", route, f"{decision.reason}; {handed.reason}",
                           handed.servicer)
        if decision.route not in SENDING_ROUTES or not (decision.text or decision.card_sku):
            return Outcome("skipped", route, decision.reason or "nothing to send")
        messages = [text_message(decision.text)] if decision.text else []
        note = ""
        if decision.card_sku:
            card = await self.cards.card(tenant, decision.card_sku, customer.exclusive_guide)
            if card is not None and card.message is not None:
                messages.append(card.message)
            else:
                note = f"; {card.reason if card else 'card not sent: cards not wired'}"
        if not messages:
            return Outcome("skipped", route, f"{decision.reason}{note}")
        sent = await self.sender.send(tenant, message.open_kfid, message.external_userid,
                                      message.msgid, messages)
        if sent.count == 0:
            return Outcome("skipped", route, f"{decision.reason}; not sent: {sent.reason}")
        if sent.reason:
            note += f"; {sent.count} of {len(messages)} sent: {sent.reason}"
        return Outcome("replied", route, f"{decision.reason}{note}")


def _needs_writer(message: KfMessage) -> bool:
    """Whether `_handle` looks the writer up: a customer's text or a session entry."""
    if message.origin == SERVICER:
        return False
    if message.origin == SYSTEM or message.msgtype == "event":
        return message.event_type == "enter_session"
    return message.msgtype == "text"


def _servicer(item: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """Who wrote a servicer's message (origin 5); who has the session after a
    session_status_change event (its new_servicer_userid); else ""."""
    found = item.get("servicer_userid") or ""
    if not found and event.get("event_type") == SESSION_EVENT \
            and change_type(event) in NEW_SERVICER:
        found = event.get("new_servicer_userid") or ""  # not of a change_type unknown (4)
    return str(found)[:64]


def _obj(item: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    return value if isinstance(value, dict) else {}
