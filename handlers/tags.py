"""Corp tag library changes made in the WeCom console."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("tags")


@router.on(ev.CorpTagChanged)
async def on_corp_tag_changed(event: ev.CorpTagChanged, ctx: Context) -> None:
    await ctx.services.tags.sync(event.tenant)
