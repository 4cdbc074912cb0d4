"""互动雷达: a customer opened a guide's card (staged by the visit beacon) → the guide is told."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("radar")


@router.on(ev.CardOpened)
async def on_card_opened(event: ev.CardOpened, ctx: Context) -> None:
    """Nothing here is urgent: the notice waits behind a burst's welcomes."""
    await ctx.later()
    await ctx.services.radar.card_opened(event)
