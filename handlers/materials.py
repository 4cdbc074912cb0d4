"""Guides writing to the app about materials: pictures they contribute, the text that makes
them a submission (or `投稿 <text>`), and `素材 <keyword>`. Guide commands (今日任务, 客户, …)
and any other text go to the guide chat."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("materials")


@router.on(ev.AppImageMessage)
async def on_app_image(event: ev.AppImageMessage, ctx: Context) -> None:
    await ctx.services.contributions.on_image(event)


@router.on(ev.AppTextMessage)
async def on_app_text(event: ev.AppTextMessage, ctx: Context) -> None:
    is_command = bool(ctx.services.guide_chat.parse(event.content)[0])
    if is_command or not await ctx.services.contributions.take_text(event):
        await ctx.services.guide_chat.on_text(event)
