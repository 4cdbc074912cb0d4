"""The commerce part of the admin customer view: orders (first/repurchase), propensity and
the CRM member's birthday."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from guidebot.commerce import value
from guidebot.commerce.birthdays import shown
from guidebot.commerce.evidence import decode_lines
from guidebot.contacts.views import customer_view
from guidebot.db.engine import Database
from guidebot.db.repo import birthdays as birthdays_repo
from guidebot.db.repo import commerce_links as links_repo
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.db.types import utcnow
from guidebot.settings import TenantSettings


async def customer_commerce(db: Database, tenant: TenantSettings, external_userid: str,
                            now: datetime | None = None) -> dict[str, Any]:
    async with db.read() as s:
        orders = await orders_repo.orders_of(s, tenant=tenant.id,
                                             external_userid=external_userid)
        touches = await links_repo.touches_of(s, tenant=tenant.id,
                                              external_userid=external_userid)
        birthday = await birthdays_repo.get(s, tenant=tenant.id,
                                            external_userid=external_userid)
    facts = [value.OrderFact(o.order_no, o.external_userid, o.paid_at, o.guide,
                             o.credited_store or o.store_id) for o in orders]
    kinds = value.purchase_kinds(facts)
    lines = [line for o in orders for line in decode_lines(o.lines)]
    category_of = {t.sku: t.category for t in touches if t.category}
    category_of.update({line.sku: line.category for line in lines if line.category})
    visits = [value.Visit(t.at, t.dur_s, t.sku) for t in touches if t.kind == "visit"]
    return {
        "orders": [{"order_no": o.order_no, "paid_at": o.paid_at.isoformat(),
                    "amount_fen": o.amount_fen, "rule": o.rule, "guide": o.guide,
                    "store": o.credited_store or o.store_id,
                    "purchase": kinds[o.order_no]} for o in orders],
        "propensity": value.propensity(visits, now or utcnow(), category_of,
                                       [line.sku for line in lines]),
        "birthday": shown(birthday),
    }


async def customer_card(db: Database, tenant: TenantSettings,
                        external_userid: str) -> dict[str, Any]:
    """The whole customer view: relations, binding, tags (contacts) with orders, first
    purchase/repurchase, propensity and birthday; NotFound for an unknown customer."""
    return {**await customer_view(db, tenant, external_userid),
            **await customer_commerce(db, tenant, external_userid)}
