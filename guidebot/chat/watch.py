"""会话质检: the words of content_library/chat/watch_words.toml watched in 微信客服 messages.

A text message is flagged in the transaction that stores it (chat/intake.py: a message is
stored once, unique msgid, so it is flagged once whatever process reads the page); matching is
in memory, so storing a page costs one insert more only when a word is found, and nothing is
added to the reply path. A rule applies to what a servicer writes from the WeCom client
(origin 5) and/or what the customer writes (origin 3); each rule flags a message once, with the
first of its words found (any case).

A job (guidebot/jobs.py, every minute) hands each `alert` flag to the outbox: one app message
to each member of `[tenants.<id>.alerts] watch_notify` under `chat_watch:<member>:<flag id>`,
so once per flagged message and member whatever runs it; like every app message it draws from
the member's budget (app_quota.py). The message's text is never logged, nor put in the
notice: the notice links to the console's 会话质检 page."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.app_quota import AppQuota, app_text
from guidebot.content.chat import ChatContent, WatchRule
from guidebot.db.engine import Database
from guidebot.db.repo import kf as kf_repo
from guidebot.db.repo import kf_flags as repo
from guidebot.db.types import utcnow
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "watch_notify"  # the outbox kind (an app message in usage metering)
PREFIX = "chat_watch"  # of the outbox key
CUSTOMER, SERVICER = 3, 5  # sync_msg origin
WHO = {CUSTOMER: "customer", SERVICER: "servicer"}
BATCH = 100  # alert flags handed to the outbox per run
LISTED = 500  # flagged messages a page or an answer lists


def matches(rules: Iterable[WatchRule], origin: int, text: str) -> list[tuple[WatchRule, str]]:
    """The rules whose words `text` holds, each with the first word found."""
    who = WHO.get(origin)
    folded = text.casefold()
    found = []
    for rule in rules:
        if who in rule.applies:
            word = next((w for w in rule.words if w.casefold() in folded), None)
            if word is not None:
                found.append((rule, word))
    return found


class ChatWatch:
    def __init__(self, settings: Settings, db: Database, content: ChatContent, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], *, quota: AppQuota,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings, self._db, self._content = settings, db, content
        self._outbox, self._client_for, self._quota = outbox, client_for, quota
        self.clock = clock  # tests move it

    @property
    def rules(self) -> tuple[WatchRule, ...]:
        return self._content.watch

    async def flag(self, s: AsyncSession, tenant: str, rows: Sequence[Mapping[str, Any]],
                   now: datetime) -> int:
        """Flag the newly stored messages (kf_messages rows as intake inserts them) in the
        caller's transaction; how many flags."""
        flags = []
        for row in rows:
            if row["msgtype"] != "text" or row["status"] != "pending":
                continue  # a cold start's backlog (and another account's) is not watched
            found = matches(self.rules, row["origin"], row["text"])
            if not found:
                continue
            guide = row["servicer_userid"] if row["origin"] == SERVICER else \
                await repo.servicer_then(s, tenant=tenant, open_kfid=row["open_kfid"],
                                         external_userid=row["external_userid"],
                                         at=row["send_time"])
            flags += [{"tenant": tenant, "msgid": row["msgid"], "open_kfid": row["open_kfid"],
                       "external_userid": row["external_userid"], "guide": guide[:64],
                       "origin": row["origin"], "rule": rule.name, "word": word,
                       "level": rule.level, "send_time": row["send_time"],
                       "flagged_at": now, "notified_at": None} for rule, word in found]
        await repo.insert_flags(s, rows=flags)
        for flag in flags:
            log.info("chat watch tenant=%s msgid=%s rule=%s level=%s", tenant, flag["msgid"],
                     flag["rule"], flag["level"])
        return len(flags)

    # -- alerts -----------------------------------------------------------------------------

    async def notify(self, tenant_id: str) -> int:
        """Hand the alert flags not yet handed to the outbox: one app message to each
        watch_notify member (none: the flags are marked, nobody is told); how many messages."""
        tenant = self._settings.tenant(tenant_id)
        if not tenant.kf.open_kfids:  # no 微信客服 account read: nothing is flagged
            return 0
        members = tenant.alerts.watch_notify
        async with self._db.read() as s:
            flags = await repo.unnotified(s, tenant=tenant_id, limit=BATCH)
            customers = await kf_repo.customers(s, tenant=tenant_id, external_userids=list(
                {f.external_userid for f in flags}))
        count = 0
        for flag in flags:
            contact = customers.get(flag.external_userid)
            name = contact.name if contact is not None and contact.name else \
                flag.external_userid
            for member in members:
                outcome = await self._outbox.run(
                    tenant=tenant_id, key=f"{PREFIX}:{member}:{flag.id}"[:160], kind=KIND,
                    call=self.send, payload=app_text(member, self._text(tenant_id, flag, name)))
                count += 1
                log.info("chat watch alert tenant=%s flag=%s member=%s send=%s", tenant_id,
                         flag.id, member, outcome.status)
        if flags:
            async with self._db.write() as s:
                await repo.mark_notified(s, flag_ids=[f.id for f in flags if f.id is not None],
                                         now=self.clock())
        return count

    def _text(self, tenant_id: str, flag: Any, customer: str) -> str:
        day = flag.send_time.astimezone(self._settings.tenant(tenant_id).tz).date()
        query = urlencode({"from": day.isoformat(), "to": day.isoformat(), "rule": flag.rule})
        url = f"{self._settings.server.public_url}/console/{tenant_id}/watch?{query}"
        who = (self._content.text("watch_who_servicer", guide=flag.guide)
               if flag.origin == SERVICER else self._content.text("watch_who_customer"))
        return self._content.text("watch_notice", rule=flag.rule, word=flag.word, who=who,
                                  customer=customer, url=url)

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "watch_notify": message/send within the member's app
        message budget."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send}

    # -- the console's page and the admin API -------------------------------------------------

    async def report(self, tenant_id: str, day_from: date, day_to: date, *,
                     guide: str | None = None, rule: str | None = None) -> dict[str, Any]:
        """A range of the tenant's days: flags per guide and per rule, and the flagged
        messages (newest first, at most LISTED) with their text (HQ's view)."""
        tenant = self._settings.tenant(tenant_id)
        since, until = tenant.day_bounds(day_from, day_to)
        async with self._db.read() as s:
            counts = await repo.flag_counts(s, tenant=tenant_id, since=since, until=until,
                                            guide=guide, rule=rule)
            listed = await repo.flags_with_text(s, tenant=tenant_id, since=since, until=until,
                                                guide=guide, rule=rule, limit=LISTED)
            customers = await kf_repo.customers(s, tenant=tenant_id, external_userids=list(
                {f.external_userid for f, _ in listed}))
        by_guide: dict[str, int] = {}
        by_rule: dict[str, int] = {}
        for g, r, n in counts:
            by_guide[g] = by_guide.get(g, 0) + n
            by_rule[r] = by_rule.get(r, 0) + n
        levels = {r.name: r.level for r in self.rules}
        return {
            "from": day_from.isoformat(), "to": day_to.isoformat(),
            "guide": guide, "rule": rule, "total": sum(by_rule.values()),
            "guides": [{"guide": g, "flags": n} for g, n in
                       sorted(by_guide.items(), key=lambda i: (-i[1], i[0]))],
            "rules": [{"rule": r, "level": levels.get(r, ""), "flags": n} for r, n in
                      sorted(by_rule.items(), key=lambda i: (-i[1], i[0]))],
            "rule_names": [r.name for r in self.rules],
            "items": [{
                "msgid": f.msgid, "send_time": f.send_time.isoformat(),
                "open_kfid": f.open_kfid, "external_userid": f.external_userid,
                "customer_name": (customers[f.external_userid].name
                                  if f.external_userid in customers else ""),
                "is_contact": f.external_userid in customers,
                "guide": f.guide, "writer": WHO.get(f.origin, "customer"), "rule": f.rule,
                "word": f.word, "level": f.level, "text": text} for f, text in listed],
            "listed_max": LISTED}
