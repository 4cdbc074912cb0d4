"""删人提醒: a guide is told, by app message, that a customer deleted them (del_follow_user):
who (their name, else their external_userid), when they were added (a date in the tenant's
time zone) and what they bought in the guide's name. 员工删人提醒: when a guide deletes a
customer (del_external_contact, not a transfer's handover), each member of `[tenants.<id>.alerts]
guide_deleted_notify` is told the same facts with the guide's name and store.

The notice is read after the relation's end is committed and sent through the outbox under
the inbox item's key, so a callback WeCom delivers twice, or a handler run again, sends it
once; a failed send is retried by the outbox like any other app message. Like every app
message to a guide it draws from the guide's `app_msg_per_guide_per_min` budget
(guidebot/app_quota.py): over it, the outbox holds it until the minute frees."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from guidebot import events as ev
from guidebot.app_quota import AppQuota, app_text
from guidebot.content.chat import ChatContent
from guidebot.db.engine import Database
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings, TenantSettings
from guidebot.stats.definitions import yuan
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "churn_notify"  # the outbox kind (an app message in usage metering)
GUIDE_KIND = "guide_deleted_notify"  # 员工删人提醒's outbox kind (an app message too)



def outbox_key(event: ev.ContactEvent, inbox_id: int | None, kind: str = KIND) -> str:
    """One notice per deletion: by the inbox item the callback was stored as (WeCom's
    retries of a callback are stored once), else by the event itself."""
    if inbox_id is not None:
        return f"{kind}:{inbox_id}"
    ident = f"{event.guide}\x1f{event.external_userid}\x1f{event.created_at.isoformat()}"
    return f"{kind}:e{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


class ChurnAlerts:
    def __init__(self, settings: Settings, db: Database, content: ChatContent, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], *, quota: AppQuota) -> None:
        self._settings, self._db, self._content, self._outbox = settings, db, content, outbox
        self._client_for, self._quota = client_for, quota

    async def customer_deleted(self, event: ev.ContactDeletedByCustomer,
                               inbox_id: int | None) -> None:
        """Tell the guide who deleted them, unless the tenant turned the notice off. Call it
        once the relation's end is committed."""
        tenant = self._settings.tenant(event.tenant)
        if not tenant.alerts.customer_deleted:
            log.info("churn notice off tenant=%s guide=%s", tenant.id, event.guide)
            return
        text = await self.notice(tenant, event)
        outcome = await self._outbox.run(
            tenant=tenant.id, key=outbox_key(event, inbox_id), kind=KIND,
            payload=app_text(event.guide, text),
            call=self.send)
        log.info("churn notice tenant=%s guide=%s customer=%s send=%s", tenant.id, event.guide,
                 event.external_userid, outcome.status)

    async def guide_deleted(self, event: ev.ContactDeletedByGuide, inbox_id: int | None) -> None:
        """员工删人提醒: one app message to each `guide_deleted_notify` member (none: nobody
        is told). Call it once the relation's end is committed, never for a transfer."""
        tenant = self._settings.tenant(event.tenant)
        members = tenant.alerts.guide_deleted_notify
        if not members or event.by_transfer:
            return
        text = await self.guide_notice(tenant, event)
        key = outbox_key(event, inbox_id, GUIDE_KIND)
        for member in members:
            outcome = await self._outbox.run(
                tenant=tenant.id, key=f"{key}:{member}"[:160], kind=GUIDE_KIND,
                payload=app_text(member, text), call=self.send)
            log.info("guide deleted notice tenant=%s guide=%s customer=%s member=%s send=%s",
                     tenant.id, event.guide, event.external_userid, member, outcome.status)

    async def guide_notice(self, tenant: TenantSettings, event: ev.ContactDeletedByGuide) -> str:
        """The text (`guide_deleted_*`): the guide's name (else userid) and store, then the
        customer, the add day and the orders credited to the guide as in the guide's own
        删人提醒."""
        name, added, count, fen = await self._facts(tenant, event)
        async with self._db.read() as s:
            names = await contacts_repo.guide_names(s, tenant=tenant.id, userids=[event.guide])
        guide, store = names[event.guide]
        text = self._content.text
        bought = (text("guide_deleted_orders", count=count, amount=yuan(fen))
                  if count else text("guide_deleted_no_orders"))
        return text("guide_deleted_notice", guide=guide or event.guide,
                    store=store or text("guide_deleted_no_store"), customer=name, added=added,
                    orders=bought)

    async def notice(self, tenant: TenantSettings, event: ev.ContactDeletedByCustomer) -> str:
        """The notice's text (content_library/chat/texts.toml `churn_*`): the customer's name,
        the day the guide last added them and the orders credited to this guide (paid
        amounts, before refunds)."""
        name, added, count, fen = await self._facts(tenant, event)
        bought = (self._content.text("churn_orders", count=count, amount=yuan(fen))
                  if count else self._content.text("churn_no_orders"))
        return self._content.text("churn_notice", customer=name, added=added, orders=bought)

    async def _facts(self, tenant: TenantSettings,
                     event: ev.ContactEvent) -> tuple[str, str, int, int]:
        """The customer's name (else external_userid), the day the guide last added them (the
        tenant's zone), how many orders are credited to the guide and their paid fen."""
        async with self._db.read() as s:
            customer = await contacts_repo.get_customer(s, tenant=tenant.id,
                                                        external_userid=event.external_userid)
            added_at = await contacts_repo.last_added_at(
                s, tenant=tenant.id, guide=event.guide, external_userid=event.external_userid,
                until=event.created_at)
            orders = await orders_repo.orders_of(s, tenant=tenant.id,
                                                 external_userid=event.external_userid)
        added = (added_at.astimezone(tenant.tz).date().isoformat() if added_at is not None
                 else self._content.text("churn_added_unknown"))  # never saw it added
        credited = [o for o in orders if o.guide == event.guide]
        name = customer.name if customer is not None and customer.name else event.external_userid
        return name, added, len(credited), sum(o.amount_fen for o in credited)

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "churn_notify": message/send to the guide, within
        their app message budget."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send, GUIDE_KIND: self.send}
