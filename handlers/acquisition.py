"""获客助手 (customer_acquisition): WeCom telling the paid link quota runs low or out, a link
stopped working or was deleted, or a customer came through a link."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("acquisition")


@router.on(ev.AcquisitionChanged, lambda e: e.about_quota)
async def on_quota_low(event: ev.AcquisitionChanged, ctx: Context) -> None:
    """balance_low / balance_exhausted → the quota read again at once, so the console and
    the API show the balance WeCom has now (a refusal raises: the inbox retries)."""
    await ctx.services.acquisition.read_quota(event.tenant)


@router.on(ev.AcquisitionChanged, lambda e: e.change_type in ("link_unavailable",
                                                              "delete_link"))
async def on_link_changed(event: ev.AcquisitionChanged, ctx: Context) -> None:
    """link_unavailable / delete_link → the link code marked, shown so on the console."""
    await ctx.services.acquisition.link_changed(event)


@router.on(ev.AcquisitionChanged)
async def on_customer(event: ev.AcquisitionChanged, ctx: Context) -> None:
    """customer_start_chat / friend_request → logged only (the add has its own callback)."""
    ctx.services.acquisition.customer_seen(event)
