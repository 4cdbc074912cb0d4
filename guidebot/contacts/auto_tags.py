"""自动打标签: customers tagged from what they do and say, by the rules of
content_library/auto_tags.toml (content/auto_tags.py).

A customer opening a guide's tracked card (a touch naming them: a signed visit, or any visit
of a card made for them alone) matches the `[[on_open]]` rules by the card's sku and catalog
category; a 微信客服 text message of a customer who is a contact matches the `[[on_message]]`
rules by its words. Either way the matching tags are staged as an `AutoTagsDue` event in the
inbox, never marked on the spot: the visit stages it inside the transaction that records its
touch, so the beacon (`GET /t/{token}`) answers without waiting on WeCom, and whether the
radar's `CardOpened` is staged (throttled per window, or turned off) makes no difference here.
The message stages it before the reply is decided, in one short write, so the reply does not
wait on WeCom either. A paid order that arrives through the orders webhook matches the
`[[on_order]]` rules by its lines' skus and categories (the line's, else the catalog's) and its
paid amount: the intake stages the event in the batch transaction that records the order and
stages its `OrderPaid` (commerce/intake.py, through `order_tagger`, asked once per batch: with
tagging off or no `[[on_order]]` rule, nothing is done per order). The CSV backfill
(`guidebot orders import`) raises no `OrderPaid` (no SOP triggers either) and tags nobody.
A refund untags nothing. `handlers/auto_tags.py` hands the event to `AutoTagger.apply`.

Through which guide: a tag is a mark on one relation (guide, customer), made with
`TagService.mark`. An open is marked through the card's guide, only while the customer still
follows that guide (an `active` relation); a message through the customer's exclusive guide
if they follow them, else the first guide (by userid) they follow; an order through the guide
it was credited to (attribution) if the customer follows them, else as a message; with none,
nothing is marked and the ids are logged.

Once per customer and tag: each tag is its own mark under the outbox key
`autotag:<customer>:<tag id>`, and the outbox runs a key once, so a second open or message
marks nothing more, whichever guide it comes through (the tag stays on the relation it was
marked on; a tag a guide later removes in the client is not put back). Events are bounded
too: an open's key names the guide, the customer, the tags and the UTC day, so one customer
opening cards all day stages one event a day per guide (a customer who did not follow the
guide then is looked at again the next day); a message's key is its msgid, an order's its
order_no."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot import events as ev
from guidebot import inbox
from guidebot.contacts.relations import exclusive_guide
from guidebot.contacts.tags import TagService
from guidebot.content.library import Library
from guidebot.db.engine import Database
from guidebot.db.models_commerce import Touch
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "autotag"  # of the marks' outbox keys
KEY_CHARS = 160  # the outbox key column
DAY_S = 24 * 3600
OPEN, MESSAGE, ORDER = "open", "message", "order"  # AutoTagsDue.source
# What the order intake asks per recorded order: (order_no, paid_at, its lines' (sku,
# category as sent), paid fen, customer, credited guide) → the event to stage in its
# transaction, if any rule matches.
OrderTagger = Callable[[str, datetime, list[tuple[str, str]], int, str | None, str | None],
                       "ev.AutoTagsDue | None"]
CategoryOf = Callable[[str], str]  # a sku's catalog category ("" unknown)


def mark_key(customer: str, tag_id: str, prefix: str = PREFIX) -> str:
    """`<prefix>:<customer>:<tag id>` (`autotag`, or 预打标签's `pretag`): one mark per
    customer and tag; ids too long for the key column are hashed."""
    key = f"{prefix}:{customer}:{tag_id}"
    if len(key) <= KEY_CHARS:
        return key
    digest = hashlib.sha256("\x1f".join((customer, tag_id)).encode()).hexdigest()[:40]
    return f"{prefix}:h{digest}"


def open_ref(guide: str, customer: str, tags: tuple[str, ...], at: datetime) -> str:
    """An open's event: one per guide, customer, tags and UTC day (module docstring)."""
    who = hashlib.sha256("\x1f".join((guide, customer, *tags)).encode()).hexdigest()[:32]
    return f"{OPEN}:{int(at.timestamp()) // DAY_S}:{who}"


class AutoTagger:
    def __init__(self, settings: Settings, db: Database, library: Library,
                 tags: TagService) -> None:
        self._settings, self._db, self._library, self._tags = settings, db, library, tags

    def enabled(self, tenant: str) -> bool:
        found = self._settings.tenants.get(tenant)
        return found is not None and found.auto_tags.enabled

    async def stage_open(self, session: AsyncSession, touch: Touch, customer: str) -> None:
        """What the visit beacon calls, in its transaction, for a touch naming a customer
        (commerce/links.py `CardOpened`): stage the tags of the rules the card matches."""
        if not self.enabled(touch.tenant):
            return
        names = self._library.auto_tags.for_open(touch.sku, touch.category)
        if not names:
            return
        event = ev.AutoTagsDue(tenant=touch.tenant, created_at=touch.at,
                               ref=open_ref(touch.guide, customer, names, touch.at),
                               external_userid=customer, source=OPEN, tags=names,
                               guide=touch.guide)
        await inbox.stage(session, event=event, key=ev.internal_key(event))

    def order_tagger(self, tenant: str, category_of: CategoryOf) -> OrderTagger | None:
        """For a batch of the tenant's paid orders: what tells each order's event, or None
        when tagging is off or no `[[on_order]]` rule exists (nothing to do per order)."""
        rules = self._library.auto_tags
        if not rules.on_order or not self.enabled(tenant):
            return None

        def tag(order_no: str, paid_at: datetime, lines: list[tuple[str, str]],
                paid_fen: int, customer: str | None,
                guide: str | None) -> ev.AutoTagsDue | None:
            if not customer:
                return None
            names = rules.for_order(((sku, category or category_of(sku))
                                     for sku, category in lines), paid_fen)
            if not names:
                return None
            return ev.AutoTagsDue(tenant=tenant, created_at=paid_at, ref=f"{ORDER}:{order_no}",
                                  external_userid=customer, source=ORDER, tags=names,
                                  guide=guide or "")

        return tag

    async def heard(self, tenant: str, *, external_userid: str, contact: bool, msgid: str,
                    text: str, at: datetime) -> str:
        """A customer's 微信客服 text message: stage the tags of the rules it matches. What
        was done, in a few words (never the text)."""
        if not self.enabled(tenant):
            return "off"
        names = self._library.auto_tags.for_message(text)
        if not names:
            return "no rule"
        if not contact:
            log.info("auto tags: the kf customer is not a contact tenant=%s customer=%s",
                     tenant, external_userid)
            return "not a contact"
        event = ev.AutoTagsDue(tenant=tenant, created_at=at, ref=f"{MESSAGE}:{msgid}",
                               external_userid=external_userid, source=MESSAGE, tags=names)
        async with self._db.write() as s:
            new = await inbox.stage(s, event=event, key=ev.internal_key(event))
        log.info("auto tags from a kf message tenant=%s customer=%s msgid=%s tags=%s new=%s",
                 tenant, external_userid, msgid, len(names), new)
        return f"{len(names)} tag(s) staged" if new else "staged before"

    async def apply(self, event: ev.AutoTagsDue) -> str:
        """Mark the event's tags on the customer through their guide, each once per customer
        (module docstring). What was done, in a few words."""
        tenant, customer = event.tenant, event.external_userid
        if not self.enabled(tenant):
            log.info("auto tags off tenant=%s customer=%s", tenant, customer)
            return "off"
        guide = await self._guide(event)
        if guide is None:
            log.info("auto tags: no guide to tag through tenant=%s customer=%s source=%s "
                     "card_guide=%s", tenant, customer, event.source, event.guide or "-")
            return "no guide"
        try:
            tag_ids = await self._tags.resolve(tenant, list(event.tags))
        except ValidationFailed:
            log.warning("auto tags tenant=%s customer=%s: a tag is not in the tag library; "
                        "declare it in tags.toml", tenant, customer)
            return "not in the tag library"
        statuses = []
        for tag_id in tag_ids:
            outcome = await self._tags.mark(tenant, key=mark_key(customer, tag_id),
                                            guide=guide, external_userid=customer,
                                            add=[tag_id], remove=[])
            statuses.append(f"{tag_id}={outcome.status}")
        log.info("auto tags tenant=%s customer=%s guide=%s source=%s marks=%s", tenant,
                 customer, guide, event.source, ",".join(statuses))
        return ", ".join(statuses)

    async def _guide(self, event: ev.AutoTagsDue) -> str | None:
        """The card's guide for an open; the exclusive guide else the first for a message, and
        for an order whose credited guide they do not follow; only one the customer follows
        now (an active relation)."""
        async with self._db.read() as s:
            follows = await contacts_repo.list_follows(s, tenant=event.tenant,
                                                       external_userid=event.external_userid)
            bindings = ([] if event.source == OPEN else await contacts_repo.list_bindings(
                s, tenant=event.tenant, external_userid=event.external_userid))
        active = sorted({f.guide for f in follows if f.status == "active"})
        if event.source == OPEN:
            return event.guide if event.guide in active else None
        if event.source == ORDER and event.guide in active:
            return event.guide
        exclusive = exclusive_guide(bindings, utcnow(),
                                    self._settings.tenant(event.tenant))
        if exclusive in active:
            return exclusive
        return active[0] if active else None
