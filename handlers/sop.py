"""SOP triggers and exits from internal order events (adds enroll in handlers/contacts.py)."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("sop")


@router.on(ev.OrderPaid)
async def on_order_paid(event: ev.OrderPaid, ctx: Context) -> None:
    await ctx.services.sop.engine.on_order_paid(event.tenant, event.external_userid,
                                                event.guide, event.created_at)
