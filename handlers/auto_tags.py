"""自动打标签: a customer opened a card, wrote to 微信客服 or paid an order, matching rules of
content_library/auto_tags.toml (staged by the visit beacon, the kf intake or the order intake)
→ the rules' tags are marked on them."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("auto_tags")


@router.on(ev.AutoTagsDue)
async def on_auto_tags_due(event: ev.AutoTagsDue, ctx: Context) -> None:
    """Nothing here is urgent: the marks wait behind a burst's welcomes."""
    await ctx.later()
    await ctx.services.auto_tags.apply(event)
