"""The demo's last chapter: the daily statistics brought up to date, and the data centre's
increment (what the channel codes brought vs the existing base) as the console shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from guidebot.stats.definitions import percent, yuan


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
