"""Customer groups changing (change_external_chat): created, members joining or leaving,
renamed, a new owner, dismissed."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("groups")


@router.on(ev.GroupChatChanged)
async def on_group_changed(event: ev.GroupChatChanged, ctx: Context) -> None:
    """Dismissed → recorded; anything else → the group read back from WeCom and stored
    (retried by the inbox while WeCom has not caught up with its own callback)."""
    await ctx.services.groups.on_change(event)
