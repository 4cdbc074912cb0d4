"""What the sidebar shows a guide about the customer in the open chat, and what it changes.

A guide sees only customers they actively follow (anything else is NotFound, the same as an
unknown customer). Tags are those on this guide's relation (WeCom tags live on the relation),
edited through the TagService (mark_tag through the outbox, mirrored when WeCom agrees).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from guidebot.commerce.birthdays import coming_birthday
from guidebot.commerce.links import LinkRequest, LinkService
from guidebot.commerce.views import customer_card
from guidebot.contacts import notes, remarks
from guidebot.contacts import profile_fields as profile
from guidebot.contacts.tags import TagService
from guidebot.content.library import Library
from guidebot.content.render import render
from guidebot.db.engine import Database
from guidebot.db.models import CorpTag, Follow
from guidebot.db.repo import birthdays as birthdays_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import groups as groups_repo
from guidebot.db.repo import relation_tags
from guidebot.db.repo import tags as tags_repo
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, ValidationFailed
from guidebot.outbox import Outcome
from guidebot.settings import TenantSettings
from guidebot.sidebar.tickets import AgentTickets
from guidebot.stats.timeline import customer_timeline, shown_at
from guidebot.wecom.client import WeComClient

RECENT_ORDERS = 5
RECENT_EVENTS = 10  # 客户动态
RECENT_NOTES = 10  # 跟进记录
BIRTHDAY_SOON_DAYS = 30  # a birthday this near is shown with how many days are left
CARD_CAMPAIGN = "sidebar"
GUIDE_ONLY = "task."  # a message naming task placeholders is written to guides


class SidebarService:
    def __init__(self, db: Database, library: Library, tags: TagService, links: LinkService,
                 tickets: AgentTickets, cover_url: Callable[[TenantSettings], str],
                 client_for: Callable[[str], WeComClient]) -> None:
        self._db = db
        self._library = library
        self._tags = tags
        self._links = links
        self.tickets = tickets
        self._cover_url = cover_url
        self._client_for = client_for
        self.clock: Callable[[], datetime] = utcnow  # "today" for the birthday's countdown

    async def check_follows(self, tenant: TenantSettings, guide: str,
                            customer: str) -> Follow:
        """The guide's active follow of `customer`; a customer the guide does not follow is
        not found (404), on every sidebar route naming a customer."""
        async with self._db.read() as s:
            follows = await contacts_repo.list_follows(s, tenant=tenant.id,
                                                       external_userid=customer)
        mine = [f for f in follows if f.guide == guide and f.status == "active"]
        if not mine:
            raise NotFound(f"customer {customer} not found", code="sidebar.customer_unknown")
        return mine[0]

    async def customer(self, tenant: TenantSettings, guide: str,
                       customer: str) -> dict[str, Any]:
        relation = await self.check_follows(tenant, guide, customer)
        view = await customer_card(self._db, tenant, customer)
        async with self._db.read() as s:
            mine = await relation_tags.relation_tag_ids(s, tenant=tenant.id,
                                                        external_userid=customer, guide=guide)
            library = await tags_repo.list_library(s, tenant=tenant.id)
            me = await contacts_repo.get_guide(s, tenant=tenant.id, userid=guide)
            store = (await contacts_repo.get_store(s, tenant=tenant.id, store_id=me.store_id)
                     if me is not None and me.store_id else None)
            groups = [(g, m) for g, m in await groups_repo.of_member(
                s, tenant=tenant.id, member_id=customer)
                if m.left_at is None and g.dismissed_at is None]
            birthday = await birthdays_repo.get(s, tenant=tenant.id, external_userid=customer)
        events = await customer_timeline(self._db, tenant, customer, library=self._library,
                                         catalog=self._links.catalog, limit=RECENT_EVENTS)
        names = {"customer": {"name": view["name"]},
                 "guide": {"name": (me.name if me else "") or guide, "userid": guide},
                 "store": {"name": store.name if store else ""}}
        return {
            "guide": guide,
            "customer": {**{k: view[k] for k in ("external_userid", "name", "channel",
                                                 "opted_out_at")},
                         "birthday": self._birthday(tenant, birthday)},
            "remark": relation.remark, "description": relation.description,
            "tags": sorted(t.name for t in library if t.tag_id in mine),
            "tag_library": _groups(library),
            "exclusive_guide": view["exclusive_guide"],
            "bound_to_me": view["exclusive_guide"] == guide,
            "bindings": view["bindings"],
            "orders": sorted(view["orders"], key=lambda o: o["paid_at"],
                             reverse=True)[:RECENT_ORDERS],
            "propensity": view["propensity"],
            "groups": [{"chat_id": g.chat_id, "name": g.name, "owner": g.owner,
                        "joined_at": m.joined_at.isoformat() if m.joined_at else None}
                       for g, m in groups],
            "timeline": [{**e, "when": shown_at(e["at"], tenant.tz)} for e in events],
            "notes": await notes.of_customer(self._db, tenant, customer, limit=RECENT_NOTES),
            "fields": await profile.of_customer(self._db, tenant, self._library.profile_fields,
                                                customer),
            "suggestions": self._suggestions(names),
            "products": [{"sku": p.sku, "name": p.name, "price_fen": p.price_fen}
                         for p in self._links.catalog.products.values()],
        }

    def _birthday(self, tenant: TenantSettings, row: Any) -> dict[str, Any] | None:
        """{date: "MM-DD", in_days: days until it (0 on the day; Feb 29 on Feb 28 in years
        without one) when within BIRTHDAY_SOON_DAYS, else None}; None when unknown."""
        if row is None:
            return None
        today = self.clock().astimezone(tenant.tz).date()
        days = (coming_birthday(row.month, row.day, today) - today).days
        return {"date": f"{row.month:02d}-{row.day:02d}",
                "in_days": days if days <= BIRTHDAY_SOON_DAYS else None}

    def _suggestions(self, names: dict[str, dict[str, str]]) -> list[dict[str, str]]:
        """content_library messages a guide can send a customer as they are: those with text,
        no task placeholders and not marked `sidebar = false` (the 微信客服 bot's own replies,
        notices to guides), rendered for this customer and guide."""
        out = []
        for message in sorted(self._library.messages.values(), key=lambda m: m.id):
            if not message.sidebar or not message.text.strip() or GUIDE_ONLY in message.text:
                continue
            out.append({"id": message.id, "text": render(message.text, names)})
        return out

    async def edit_tags(self, tenant: TenantSettings, guide: str, customer: str, *,
                        add: list[str], remove: list[str]) -> Outcome:
        await self.check_follows(tenant, guide, customer)
        return await self._tags.edit(tenant.id, guide=guide, external_userid=customer,
                                     add=add, remove=remove)

    async def add_note(self, tenant: TenantSettings, guide: str, customer: str,
                       text: object, follow_up_on: object) -> int:
        """The guide's follow-up note (跟进记录) about a customer they follow; its id."""
        await self.check_follows(tenant, guide, customer)
        return await notes.add(self._db, tenant, guide, customer, text, follow_up_on)

    async def set_fields(self, tenant: TenantSettings, guide: str, customer: str,
                         values: object) -> list[str]:
        """客户资料: the guide sets or clears profile fields of a customer they follow
        ({field id: value}); the fields changed. A field HQ keeps (guides_edit false) is
        refused unless sent unchanged."""
        await self.check_follows(tenant, guide, customer)
        if not isinstance(values, dict):
            raise ValidationFailed("values: an object of field id → value",
                                   code="profile.values")
        return await profile.set_values(self._db, tenant, self._library.profile_fields,
                                        customer, values, by=guide)

    async def set_remark(self, tenant: TenantSettings, guide: str, customer: str,
                         remark: object, description: object) -> None:
        """The guide's WeCom remark and description of a customer they follow (WeCom first;
        WeComError, nothing stored)."""
        await self.check_follows(tenant, guide, customer)
        await remarks.set_remark(self._db, self._client_for(tenant.id), tenant.id, guide,
                                 customer, remark, description)

    async def card(self, tenant: TenantSettings, guide: str, customer: str,
                   sku: str) -> dict[str, Any]:
        """A tracked mini-program card of a catalog product, in sendChatMessage's shape
        (FACTS-next §B.6): the page carries this guide's tracking token."""
        await self.check_follows(tenant, guide, customer)
        product = self._links.catalog.get(sku)
        if product is None:
            raise ValidationFailed(f"sku: {sku!r} is not in the catalog",
                                   code="sidebar.sku_unknown", sku=sku)
        link = await self._links.create(tenant, LinkRequest(
            guide=guide, sku=sku, customer=customer, campaign=CARD_CAMPAIGN))
        return {"msgtype": "miniprogram", "enterChat": False, "token": link["token"],
                "miniprogram": {"appid": tenant.miniprogram_appid, "title": product.name,
                                "imgUrl": self._cover_url(tenant), "page": link["page"]}}


def _groups(library: Sequence[CorpTag]) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for tag in sorted(library, key=lambda t: (t.group_name, t.name)):
        groups.setdefault(tag.group_name, []).append(tag.name)
    return [{"group": g, "tags": names} for g, names in groups.items()]
