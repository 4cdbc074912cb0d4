"""The demo's last chapter: the daily statistics brought up to date, the data centre's
increment (what the channel codes brought vs the existing base) as the console shows it, and
the month's usage as the SaaS operator meters it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from guidebot.commerce import periods
from guidebot.stats.definitions import percent, yuan
from guidebot.usage import metering

KIND_NAMES = {"welcome": "welcome", "mass_task": "群发 task", "moment": "moment",
              "kf_reply": "客服 reply", "app_message": "app message"}


async def story(ctx: Any) -> None:
    from guidebot.app import RUNTIME

    stats = ctx.app[RUNTIME].services.stats
    tenant = ctx.settings.tenant(ctx.tenant)
    rows = await stats.upkeep()
    today = datetime.now(tenant.tz).date()
    body = await stats.overview(ctx.tenant, today, today)
    t, funnel = body["totals"], body["funnel"]
    ctx.out(f"Data centre: the daily statistics counted {rows} new source rows; today "
            f"({tenant.timezone}):")
    ctx.out(f"  adds {t['adds']} ({t['adds_code']} through channel codes, {t['adds_other']} "
            f"other), deletions {t['deletions']}, net growth {t['net_growth']}")
    ctx.out(f"  funnel: {funnel['added']} new customers → {funnel['first_purchase']} first "
            f"purchases ({percent(funnel['first_purchase'], funnel['added'])}) → "
            f"{funnel['repurchase']} repurchases")
    ctx.out(f"  attributed GMV {yuan(t['gmv_fen'])}: {yuan(t['gmv_new_fen'])} from customers "
            f"the codes brought, {yuan(t['gmv_existing_fen'])} from the existing base")
    ctx.out(f"  the same figures: the console at /console/{ctx.tenant}/ and "
            f"GET /api/v1/{ctx.tenant}/metrics/overview")
    period = periods.of(datetime.now(tenant.tz), tenant.tz)
    u = await metering.tenant_usage(ctx.app[RUNTIME].services.db, tenant, period)
    sent = ", ".join(f"{KIND_NAMES[k]} {n}" for k, n in u["messages"].items())
    ctx.out(f"Usage {period} (what a SaaS operator bills): {u['active_guides']} active guides, "
            f"{u['customers_added']} customers added; messages: {sent}; LLM tokens "
            f"{u['llm_tokens']} (this demo runs without a model); attributed orders "
            f"{u['attributed_orders']}, GMV {yuan(u['attributed_gmv_fen'])}")
    ctx.out(f"  the same: guidebot usage --period {period}, GET /api/v1/{ctx.tenant}/usage?"
            f"period={period}, and the operator's page /operator/usage across tenants")
