"""The commerce facade the Services container holds: links, identity, orders, ledger, views."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from guidebot.commerce import periods, value
from guidebot.commerce.identity import IdentityService
from guidebot.commerce.intake import OrderIntake
from guidebot.commerce.ledger import Ledger
from guidebot.commerce.links import CardOpened, LinkService
from guidebot.commerce.orders import OrderService, OrderTagger
from guidebot.commerce.views import customer_commerce
from guidebot.content.catalog import Catalog, load_catalog
from guidebot.db.engine import Database
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.db.types import utcnow
from guidebot.settings import Settings, TenantSettings
from guidebot.wecom.client import WeComClient


class CommerceService:
    def __init__(self, settings: Settings, db: Database, client: Callable[[str], WeComClient],
                 *, clock: Callable[[], datetime] = utcnow,
                 opened: CardOpened | None = None,
                 order_tags: Callable[[str, Callable[[str], str]], OrderTagger | None]
                 | None = None) -> None:
        self.settings = settings
        self.db = db
        self.catalog: Catalog = load_catalog(settings.content_library)
        self.identity = IdentityService(db, client)
        self.links = LinkService(db, self.catalog,
                                 lambda t: self.settings.tenants[t].order_secret
                                 if t in self.settings.tenants else "", opened)
        # 自动打标签 of paid orders: the tagger is given the catalog's categories of skus
        tags = ((lambda t: order_tags(t, self.catalog.category)) if order_tags is not None
                else None)
        self.orders = OrderService(db, self.identity, lambda: self.clock(), order_tags=tags)
        self.intake = OrderIntake(lambda t: self.settings.tenants.get(t), db, self.identity,
                                  lambda: self.clock(), order_tags=tags)
        self.ledger = Ledger(db, lambda: self.clock())
        self.clock = clock

    def tenant(self, tenant_id: str) -> TenantSettings:
        return self.settings.tenant(tenant_id)

    async def record_rules(self) -> None:
        """Version each tenant's commission rules at start (effective time = now)."""
        for tenant in self.settings.tenants.values():
            await self.orders.record_rules(tenant)

    async def track_attachments(self, tenant_id: str, guide: str,
                                attachments: list[dict[str, Any]],
                                campaign: str) -> list[dict[str, Any]]:
        """Library attachments as `guide` sends them: every `miniprogram` with a `sku` gets a
        page tracked for that guide and campaign ("welcome:<message id>",
        "sop:<sop id>:<step>"); one stable link per tenant × guide × campaign × sku × page.
        Raises ValidationFailed when a page cannot take the token (no .html, > 128 bytes)."""
        return await self.links.track_attachments(self.tenant(tenant_id), guide, attachments,
                                                  campaign)

    async def customer_view(self, tenant: TenantSettings,
                            external_userid: str) -> dict[str, Any]:
        return await customer_commerce(self.db, tenant, external_userid, self.clock())

    async def value_report(self, tenant: TenantSettings, period: str) -> dict[str, Any]:
        start, end = periods.bounds(period, tenant.tz)
        async with self.db.read() as s:
            purchases = await orders_repo.period_purchases(s, tenant=tenant.id, start=start,
                                                           end=end)
        return {"period": period, **value.value_report(purchases)}
