"""Address-book changes (change_contact): guides' names, status and stores."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("directory")


@router.on(ev.DirectoryChanged)
async def on_directory_changed(event: ev.DirectoryChanged, ctx: Context) -> None:
    await ctx.services.directory.on_change(event)
