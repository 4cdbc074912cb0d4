"""Customers adding, deleting and being transferred between guides; edits in the client."""

from guidebot import events as ev
from guidebot.routing import Context, Router
from guidebot.sop.engine import AddContext

router = Router("contacts")


@router.on(ev.ContactAdded)
async def on_contact_added(event: ev.ContactAdded, ctx: Context) -> None:
    """Name a guide seen for the first time → record the relation → welcome inside WeCom's
    20 s → (may wait for a burst) store the profile → enroll in SOPs → apply the channel
    code's tags and HQ's pre-tags of the customer's unionid (预打标签) → a guide who
    reached the code's daily limit leaves the code."""
    s = ctx.services
    await s.directory.ensure_named(event.tenant, event.guide)
    relation = await s.relations.record_add(event, ctx.inbox_id)
    add = AddContext.of(relation)
    sop_welcome = delivery = None
    if event.welcome_code:
        sop_welcome = await s.sop.engine.welcome_for(add)
        delivery = await s.welcome.greet(relation, sop_welcome.message if sop_welcome else None)
    await ctx.later()
    await s.profiles.fetch(event.tenant, event.external_userid)
    if not event.half:
        await s.sop.engine.on_contact_added(add, sop_welcome, s.welcome.note(delivery))
    await s.tags.apply_channel_tags(relation)
    await s.pretags.on_added(event.tenant, guide=event.guide,
                             external_userid=event.external_userid)
    await s.channel_rotation.after_add(relation)


@router.on(ev.ContactDeletedByGuide)
async def on_contact_deleted_by_guide(event: ev.ContactDeletedByGuide, ctx: Context) -> None:
    """The relation ends → once that is committed, unless it is a transfer's handover, the
    members of `[tenants.<id>.alerts] guide_deleted_notify` are told (员工删人提醒)."""
    await ctx.services.relations.record_guide_deleted(event, ctx.inbox_id)
    if event.by_transfer:
        return
    await ctx.later()
    await ctx.services.churn.guide_deleted(event, ctx.inbox_id)


@router.on(ev.ContactDeletedByCustomer)
async def on_contact_deleted_by_customer(event: ev.ContactDeletedByCustomer,
                                         ctx: Context) -> None:
    """The relation ends (and the guide's binding with it) → once that is committed, the
    guide is told who deleted them (删人提醒; `[tenants.<id>.alerts] customer_deleted`)."""
    await ctx.services.relations.record_customer_deleted(event, ctx.inbox_id)
    await ctx.later()
    await ctx.services.churn.customer_deleted(event, ctx.inbox_id)


@router.on(ev.TransferFailed)
async def on_transfer_failed(event: ev.TransferFailed, ctx: Context) -> None:
    await ctx.services.relations.record_transfer_failed(event, ctx.inbox_id)


@router.on(ev.ContactEdited)
async def on_contact_edited(event: ev.ContactEdited, ctx: Context) -> None:
    """A guide edited remark or tags in the WeCom client; WeCom says only that (FACTS §2),
    so read the relation back and reconcile the tag mirror. A WeCom failure raises, so the
    inbox retries the event; a relation WeCom no longer has is left alone."""
    follow = await ctx.services.profiles.follow_of(event.tenant, event.external_userid,
                                                   guide=event.guide)
    if follow is not None:
        await ctx.services.tags.reconcile(event.tenant, guide=event.guide,
                                          external_userid=event.external_userid,
                                          tags=follow.get("tags") or [])
