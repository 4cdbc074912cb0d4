"""微信客服: new messages or events to read (kf_msg_or_event)."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("kf")


@router.on(ev.KfMsgOrEvent)
async def on_kf_msg_or_event(event: ev.KfMsgOrEvent, ctx: Context) -> None:
    if ctx.services.kf is not None:
        await ctx.services.kf.on_event(event)
