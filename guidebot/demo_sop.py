"""The demo's SOP chapter: steps fire on a compressed clock, guides confirm, results tracked."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from guidebot.app import RUNTIME
from guidebot.db.repo import sop_plan
from guidebot.db.types import utcnow
from guidebot.events import OrderPaid
from guidebot.services import Services

MOMENTS = ((1, 10, 5), (3, 10, 5), (7, 19, 5))  # (day, hour, minute) after the adds


async def story(ctx: Any) -> None:
    services: Services = ctx.app[RUNTIME].services
    sop, tenant = services.sop, ctx.tenant
    tz = services.settings.tenant(tenant).tz
    start = utcnow()
    ctx.out("SOPs (content_library/sops/) on a compressed clock:")
    for current in (await sop.ready(tenant)).values():
        spec = current.spec
        ctx.out(f"  {spec.id} ({spec.title}), v{current.version}, trigger {spec.trigger.on}, "
                f"{len(spec.steps)} steps")
    enrolled = await _enrollments(services, tenant, ctx.customers)
    ctx.out(f"  {enrolled} demo customers enrolled in new_customer_nurture at their add; "
            "its welcome replaced the default one (same single send_welcome_msg).")
    buyer = ctx.customers[0]
    await services.raise_events([OrderPaid(tenant=tenant, created_at=start, order_no="DEMO-O1",
                                           external_userid=buyer["external_userid"],
                                           guide=buyer["guide"], amount_fen=29900)])
    await ctx.app[RUNTIME].drain()
    ctx.out(f"  {buyer['name']} pays an order: exits new_customer_nurture (pending steps "
            "cancelled) and enters repurchase_care.")
    for day, hour, minute in MOMENTS:
        local = (start.astimezone(tz) + timedelta(days=day)).replace(
            hour=hour, minute=minute, second=0, microsecond=0)
        await _advance(ctx, sop, local)
        await _confirm_and_track(ctx, services, tenant)
    await _summary(ctx, services, tenant)
    sop.clock = utcnow


async def _enrollments(services: Services, tenant: str, customers: list[dict[str, Any]]) -> int:
    count = 0
    async with services.db.read() as s:
        for customer in customers:
            found = await sop_plan.find_enrollment(
                s, tenant=tenant, sop_id="new_customer_nurture",
                external_userid=customer["external_userid"], guide=customer["guide"])
            count += found is not None
    return count


async def _advance(ctx: Any, sop: Any, local: datetime) -> None:
    target = local.astimezone(utcnow().tzinfo)
    ctx.sandbox.advance_clock(max(0.0, (target - sop.clock()).total_seconds()))
    sop.clock = lambda: target
    delivered = await sop.tick(ctx.tenant)
    ctx.out(f"  clock → {local.isoformat()}: {delivered} due step(s) dispatched")


async def _confirm_and_track(ctx: Any, services: Services, tenant: str) -> None:
    from guidebot.sop import views

    body = await views.tasks_view(services.db, services.settings.tenant(tenant), None, "sent")
    for task in body["tasks"]:
        if task["kind"] != "guide_task":
            continue
        confirmed = ctx.sandbox.confirm_groupmsg(tenant, task["msgid"], task["guide"])
        sent = sum(1 for status in confirmed["recipients"].values() if status == 1)
        ctx.out(f"    {task['guide']} confirms mass-send task #{task['id']} ({task['message']}): "
                f"{sent}/{len(confirmed['recipients'])} delivered")
    sop = services.sop
    later = sop.clock() + timedelta(hours=1)
    sop.clock = lambda: later
    await sop.track(tenant)


async def _summary(ctx: Any, services: Services, tenant: str) -> None:
    from guidebot.sop import views

    body = await views.tasks_view(services.db, services.settings.tenant(tenant), None, None)
    kinds = Counter(f"{t['kind']}:{t['status']}" for t in body["tasks"])
    ctx.out("  tasks: " + ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items())))
    token = services.settings.tenant(tenant).admin_token  # the demo's own token
    ctx.out(f"  see them: curl -H 'Authorization: Bearer {token}' "
            f"{ctx.bot_url}/api/v1/{tenant}/tasks")
