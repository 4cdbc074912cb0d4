"""Customer groups changing (change_external_chat): created, members joining or leaving,
renamed, a new owner, dismissed."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("groups")


@router.on(ev.GroupChatChanged)
async def on_group_changed(event: ev.GroupChatChanged, ctx: Context) -> None:
    """Dismissed → recorded → its group SOPs end; anything else → the group read back from
    WeCom and stored (retried by the inbox while WeCom has not caught up with its own
    callback) → a group just created enrolls in the group SOPs that admit it."""
    group = await ctx.services.groups.on_change(event)
    engine = ctx.services.sop.engine
    if group is None:  # dismissed (or gone before it could be read)
        await engine.on_group_dismissed(event.tenant, event.chat_id)
    elif event.change_type == "create":
        await engine.on_group_created(event.tenant, chat_id=event.chat_id, owner=group.owner,
                                      name=group.name, at=event.created_at)
