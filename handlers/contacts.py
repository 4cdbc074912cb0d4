"""Customers adding, deleting and being transferred between guides."""

from guidebot import events as ev
from guidebot.routing import Context, Router

router = Router("contacts")


@router.on(ev.ContactAdded)
async def on_contact_added(event: ev.ContactAdded, ctx: Context) -> None:
    await ctx.services.contacts.on_added(event, ctx.inbox_id)


@router.on(ev.ContactDeletedByGuide)
async def on_contact_deleted_by_guide(event: ev.ContactDeletedByGuide, ctx: Context) -> None:
    await ctx.services.contacts.on_guide_deleted(event, ctx.inbox_id)


@router.on(ev.ContactDeletedByCustomer)
async def on_contact_deleted_by_customer(event: ev.ContactDeletedByCustomer,
                                         ctx: Context) -> None:
    await ctx.services.contacts.on_customer_deleted(event, ctx.inbox_id)


@router.on(ev.TransferFailed)
async def on_transfer_failed(event: ev.TransferFailed, ctx: Context) -> None:
    await ctx.services.contacts.on_transfer_failed(event, ctx.inbox_id)


@router.on(ev.ContactEdited)
async def on_contact_edited(event: ev.ContactEdited, ctx: Context) -> None:
    await ctx.services.contacts.on_edited(event)
