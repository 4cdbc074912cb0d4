"""Read models of contacts for the admin API (DESIGN §5.3)."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any

from guidebot.contacts import binding as rules
from guidebot.contacts.relations import as_period
from guidebot.db.engine import Database
from guidebot.db.models import ChannelCode
from guidebot.db.repo import channels as channels_repo
from guidebot.db.repo import contacts as repo
from guidebot.db.repo import opt_outs as opt_outs_repo
from guidebot.db.repo import tags as tags_repo
from guidebot.db.types import utcnow
from guidebot.errors import NotFound
from guidebot.settings import TenantSettings


def iso(at: datetime | None) -> str | None:
    """A stored time as an answer gives it (ISO 8601), or None."""
    return at.isoformat() if at else None


async def customer_view(db: Database, tenant: TenantSettings,
                        external_userid: str) -> dict[str, Any]:
    async with db.read() as s:
        customer = await repo.get_customer(s, tenant=tenant.id, external_userid=external_userid)
        if customer is None:
            raise NotFound(f"external_userid: customer {external_userid} not found",
                           code="customer.unknown", external_userid=external_userid)
        follows = await repo.list_follows(s, tenant=tenant.id, external_userid=external_userid)
        bindings = await repo.list_bindings(s, tenant=tenant.id, external_userid=external_userid)
        tags = await tags_repo.customer_tag_names(s, tenant=tenant.id,
                                                  external_userid=external_userid)
        opt_out = await opt_outs_repo.get(s, tenant=tenant.id, external_userid=external_userid)
        coded = [f for f in follows if f.channel_code_id is not None]
        first = min(coded, key=lambda f: f.added_at) if coded else None
        code = (await channels_repo.get(s, tenant=tenant.id, code_id=first.channel_code_id)
                if first and first.channel_code_id else None)
    current = rules.current([as_period(b) for b in bindings], utcnow(),
                            tenant.commission.binding_validity_days)
    return {
        "external_userid": customer.external_userid,
        "name": customer.name,
        "unionid": customer.unionid,
        "profile_fetched": customer.profile_fetched_at is not None,
        "guides": [{"userid": f.guide, "state": f.state, "added_at": iso(f.added_at),
                    "status": f.status, "ended_at": iso(f.ended_at)} for f in follows],
        "exclusive_guide": current.guide if current else None,
        "bindings": [{"guide": b.guide, "started_at": iso(b.started_at),
                      "ended_at": iso(b.ended_at), "end_reason": b.end_reason}
                     for b in bindings],
        "tags": tags,
        "channel": ({"store": code.store_id, "guide": code.guide,
                     "campaign": code.campaign or None} if code else None),
        "opted_out_at": iso(opt_out.opted_out_at) if opt_out else None,
    }


async def guides_view(db: Database, tenant: TenantSettings) -> dict[str, Any]:
    async with db.read() as s:
        rows = await repo.list_guides(s, tenant=tenant.id)
    return {"guides": [{"userid": r["guide"].userid, "name": r["guide"].name,
                        "store": r["guide"].store_id,
                        "active": r["guide"].active,
                        "active_customers": r["active_customers"]} for r in rows]}


def channel_json(code: ChannelCode) -> dict[str, Any]:
    return {"id": code.id, "kind": code.kind, "state": code.state, "config_id": code.config_id,
            "qr_code": code.qr_code, "guide": code.guide, "guides": code.guide_list(),
            "backup_guides": code.backup_list(), "daily_limit": code.daily_limit,
            "serving": code.serving_list(), "skip_verify": code.skip_verify,
            "auto_accept_hours": code.auto_accept_hours or None,
            "skip_verify_now": code.skip_verify_now, "deleted_at": iso(code.deleted_at),
            "wecom_status": code.wecom_status or None,
            "wecom_status_at": iso(code.wecom_status_at),
            "store": code.store_id,
            "campaign": code.campaign or None, "tags": json.loads(code.tags),
            "welcome_message": code.welcome_message or None,
            "created_at": iso(code.created_at)}


async def channels_view(db: Database, tenant: TenantSettings) -> dict[str, Any]:
    """Every channel code with the relations it brought (`adds`) and those still active; a
    code with a daily limit with each guide's adds through it today (the tenant's day)."""
    today = datetime.combine(utcnow().astimezone(tenant.tz).date(), time(0), tenant.tz)
    async with db.read() as s:
        codes = await channels_repo.list_for_tenant(s, tenant=tenant.id)
        counts = await channels_repo.adds_per_code(s, tenant=tenant.id)
        adds_today = {c.id: await channels_repo.adds_since(s, tenant=tenant.id,
                                                           code_id=c.id or 0, since=today)
                      for c in codes if c.daily_limit and c.deleted_at is None}
    return {"channels": [{**channel_json(c), "adds": counts.get(c.id or 0, (0, 0))[0],
                          "following": counts.get(c.id or 0, (0, 0))[1],
                          "adds_today": adds_today.get(c.id, {})} for c in codes]}


async def require_known(db: Database, tenant: str, *, external_userid: str | None = None,
                        guide: str | None = None) -> None:
    """NotFound naming the field when the customer or guide is not one of this tenant's."""
    async with db.read() as s:
        if external_userid is not None and await repo.get_customer(
                s, tenant=tenant, external_userid=external_userid) is None:
            raise NotFound(f"external_userid: no customer {external_userid} in this tenant",
                           code="customer.unknown", external_userid=external_userid)
        if guide is not None and await repo.get_guide(s, tenant=tenant, userid=guide) is None:
            raise NotFound(f"guide: no guide {guide} in this tenant", code="guide.unknown",
                           guide=guide)
