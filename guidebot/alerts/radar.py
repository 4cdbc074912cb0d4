"""互动雷达: a guide is told, by app message, that one of their customers just opened a card
they sent, while the customer is interested: who (their name, else their external_userid),
what they opened (the catalog product's name for the card's sku, else the link's campaign)
and how often they opened this guide's cards in the 24 hours up to this visit. Only while the
customer still follows the guide (an `active` relation), never for an anonymous click (an
unsigned visit of a card that was not made for one customer), at most once per guide and
customer per window (`[tenants.<id>.alerts] card_opened_window_minutes`).

How it stays off the beacon's path: the visit (`GET /t/{token}`, commerce/links.py) stages a
`CardOpened` event in the inbox inside the transaction that records its touch, the way orders
stage `OrderPaid` and guidebot's own tag marks `TagsMarked`; the answer (204) does not wait for
anything else. The inbox processor picks the event up after the commit (its next poll, within
a quarter second), and `handlers/radar.py` hands it to `CardRadar.card_opened`, which reads
the relation and the figures and sends through the outbox like 删人提醒 (alerts/churn.py):
retried by the outbox on failure, held by the guide's app message budget
(`app_msg_per_guide_per_min`, guidebot/app_quota.py) when it is used up. An app-owned
background task was not chosen because it would be lost with its process; a registered outbox
row without a first attempt would wait for the retry pass's stale takeover (minutes).

The throttle is the key: the event's inbox key and the notice's outbox key are both
`radar:<guide>:<customer>:<bucket>`, and the inbox stores a key once and the outbox runs a key
once, so the other visits of a window stage nothing and a redelivered event sends nothing.
The bucket is the visit's time in whole windows since the Unix epoch (UTC):
floor(epoch seconds / window seconds). It is fixed and shared by every process without a
table, and taken from the visit, not from when the event is handled, so a retry lands in the
same bucket; a window that divides a day (30, 60, 1440 minutes) has a boundary at 00:00 UTC
every day (08:00 in Asia/Shanghai). The price of fixed
buckets: visits either side of a bucket's end (10:29 and 10:31 with 30 minutes) are two
notices, so it is at most one per bucket, and two at most in any window-long stretch."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot import events as ev
from guidebot import inbox
from guidebot.app_quota import AppQuota, app_text
from guidebot.commerce.links import CardOpened
from guidebot.content.catalog import Catalog
from guidebot.content.chat import ChatContent
from guidebot.db.engine import Database
from guidebot.db.models_commerce import Touch
from guidebot.db.repo import commerce_links as links_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings, TenantSettings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "radar_notify"  # the outbox kind (an app message in usage metering)
PREFIX = "radar"  # of the outbox key
KEY_CHARS = 160  # the outbox key column
COUNT_SPAN = timedelta(hours=24)  # the opens the notice counts



def window_bucket(at: datetime, minutes: int) -> int:
    """The fixed window `at` falls in: whole windows since the Unix epoch (module docstring)."""
    return int(at.timestamp()) // (minutes * 60)


def outbox_key(guide: str, customer: str, bucket: int) -> str:
    """`radar:<guide>:<customer>:<bucket>`; ids too long for the key column are hashed."""
    key = f"{PREFIX}:{guide}:{customer}:{bucket}"
    if len(key) <= KEY_CHARS:
        return key
    ident = hashlib.sha256(f"{guide}\x1f{customer}".encode()).hexdigest()[:32]
    return f"{PREFIX}:h{ident}:{bucket}"


def stager(settings: Settings) -> CardOpened:
    """What the visit beacon calls, in its transaction, for a touch naming a customer: stage
    the `CardOpened` event of this guide, customer and window, unless the tenant turned the
    notice off or a visit of the same window staged it already."""

    async def stage(session: AsyncSession, touch: Touch, customer: str) -> None:
        tenant = settings.tenants.get(touch.tenant)
        if tenant is None or not tenant.alerts.card_opened:
            return
        bucket = window_bucket(touch.at, tenant.alerts.card_opened_window_minutes)
        event = ev.CardOpened(tenant=tenant.id, created_at=touch.at,
                              ref=outbox_key(touch.guide, customer, bucket), guide=touch.guide,
                              external_userid=customer, token=touch.token, sku=touch.sku)
        await inbox.stage(session, event=event, key=ev.internal_key(event))

    return stage


class CardRadar:
    def __init__(self, settings: Settings, db: Database, content: ChatContent, catalog: Catalog,
                 outbox: Outbox, client_for: Callable[[str], WeComClient], *,
                 quota: AppQuota) -> None:
        self._settings, self._db, self._content, self._catalog = settings, db, content, catalog
        self._outbox, self._client_for, self._quota = outbox, client_for, quota

    async def card_opened(self, event: ev.CardOpened) -> None:
        """Tell the guide their customer opened their card, unless the tenant turned the
        notice off or the customer no longer follows the guide."""
        tenant = self._settings.tenant(event.tenant)
        if not tenant.alerts.card_opened:
            log.info("card radar off tenant=%s guide=%s", tenant.id, event.guide)
            return
        text = await self.notice(tenant, event)
        if text is None:
            log.info("card radar: not the guide's customer tenant=%s guide=%s customer=%s",
                     tenant.id, event.guide, event.external_userid)
            return
        outcome = await self._outbox.run(
            tenant=tenant.id, key=event.ref, kind=KIND,
            payload=app_text(event.guide, text),
            call=self.send)
        log.info("card radar notice tenant=%s guide=%s customer=%s send=%s", tenant.id,
                 event.guide, event.external_userid, outcome.status)  # not the card's token

    async def notice(self, tenant: TenantSettings, event: ev.CardOpened) -> str | None:
        """The notice's text (content_library/chat/texts.toml `radar_*`), or None when the
        customer has no active relation with the guide."""
        async with self._db.read() as s:
            follows = await contacts_repo.list_follows(s, tenant=tenant.id,
                                                       external_userid=event.external_userid)
            if not any(f.guide == event.guide and f.status == "active" for f in follows):
                return None
            customer = await contacts_repo.get_customer(s, tenant=tenant.id,
                                                        external_userid=event.external_userid)
            link = await links_repo.get_link(s, tenant=tenant.id, token=event.token)
            count = await links_repo.opens_of(
                s, tenant=tenant.id, guide=event.guide, external_userid=event.external_userid,
                start=event.created_at - COUNT_SPAN, end=event.created_at)
        product = self._catalog.get(event.sku)
        card = (product.name if product is not None
                else link.campaign if link is not None and link.campaign
                else self._content.text("radar_card_unnamed"))
        name = customer.name if customer is not None and customer.name else event.external_userid
        return self._content.text("radar_notice", customer=name, card=card, count=count)

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "radar_notify": message/send to the guide, within their
        app message budget."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send}
