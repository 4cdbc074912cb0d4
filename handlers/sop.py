"""SOP triggers and exits from internal events: orders paid and tags guidebot marked (adds
enroll in handlers/contacts.py)."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("sop")


@router.on(ev.OrderPaid)
async def on_order_paid(event: ev.OrderPaid, ctx: Context) -> None:
    await ctx.services.sop.engine.on_order_paid(event.tenant, event.external_userid,
                                                event.guide, event.created_at)


@router.on(ev.TagsMarked)
async def on_tags_marked(event: ev.TagsMarked, ctx: Context) -> None:
    """Tags guidebot marked (through the API, a channel code, an opt-out): each one may end
    enrolments (`exit = ["tag_added:…"]`) and start tag-triggered SOPs."""
    for tag in event.tags:
        await ctx.services.sop.engine.on_tag_added(event.tenant, event.external_userid,
                                                   event.guide, tag, event.created_at)
