"""Text messages guides send to the app: commands answered in the app chat."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("guide_chat")


@router.on(ev.AppTextMessage)
async def on_app_text(event: ev.AppTextMessage, ctx: Context) -> None:
    await ctx.services.guide_chat.on_text(event)
