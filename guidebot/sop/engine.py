"""Enrollment: triggers (contact added, tag added, order paid, manual, a customer group
created, a birthday coming, a customer not buying for N days), exits and welcomes. A group
SOP's enrollment names the group's chat id where a customer SOP's names a customer, and its
guide is the group's owner."""

from __future__ import annotations

import calendar
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.contacts.relations import Relation
from guidebot.content.sop_spec import Audience, SopSpec
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import groups as groups_repo
from guidebot.db.repo import opt_outs, sop_no_purchase
from guidebot.db.repo import sop_bulk as bulk
from guidebot.db.repo import sop_plan as repo
from guidebot.db.repo import tags as tags_repo
from guidebot.db.repo.audiences import AudienceFilter
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, ValidationFailed
from guidebot.settings import Settings
from guidebot.sop import timing, versions
from guidebot.sop.audiences import audience_filter, once_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Welcome:
    """The SOP welcome that replaces the default one for this add (one code, one send)."""

    sop_id: str
    message: str


@dataclass(frozen=True)
class AddContext:
    tenant: str
    guide: str
    external_userid: str
    at: datetime
    state: str = ""
    campaign: str = ""
    store_id: str | None = None
    channel_tags: tuple[str, ...] = ()
    can_welcome: bool = False  # a WelcomeCode came and no channel code names its own welcome

    @classmethod
    def of(cls, relation: Relation) -> AddContext:
        event = relation.event
        return cls(tenant=event.tenant, guide=event.guide, external_userid=event.external_userid,
                   at=event.created_at, state=event.state, campaign=relation.campaign,
                   store_id=relation.store_id, channel_tags=relation.channel_tags,
                   can_welcome=bool(event.welcome_code) and relation.own_welcome is None)


class SopEngine:
    def __init__(self, settings: Settings, db: Database,
                 specs: Callable[[str], Awaitable[dict[str, versions.Current]]],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._db = db
        self.specs = specs  # the newest version of every SOP (recorded on first use)
        self.clock = clock  # "now" for manual and audience enrollments

    async def enroll(self, tenant: str, sop_id: str, *, external_userid: str, guide: str,
                     at: datetime, store_id: str | None = None,
                     welcome: str = "") -> tuple[int | None, list[int]]:
        """Enroll once per (customer, guide, SOP): (enrollment id or None, welcome step ids);
        an SOP of `reach = "customer"` once per (customer, SOP), through the first guide a
        trigger enrolls (None when enrolled through another). A customer who opted out is
        never enrolled (None).

        `welcome` is the status of a leading welcome step: "queued" (it goes out now with the
        add's WelcomeCode) or a reason it cannot ("skipped: …").
        """
        current = (await self.specs(tenant)).get(sop_id)
        if current is None or not current.enabled:
            raise NotFound(f"SOP {sop_id!r} does not exist or is disabled", code="sop.unknown",
                           sop_id=sop_id)
        async with self._db.write() as s:
            await contacts_repo.ensure_customer(s, tenant=tenant, external_userid=external_userid)
            if await opt_outs.opted_out(s, tenant=tenant, external_userid=external_userid):
                log.info("not enrolled tenant=%s sop=%s: the customer opted out", tenant, sop_id)
                return None, []
            return await self._enroll(s, tenant, current, external_userid, guide, at, store_id,
                                      welcome)

    async def _enroll(self, s: AsyncSession, tenant_id: str, current: versions.Current,
                      external_userid: str, guide: str, at: datetime, store_id: str | None,
                      welcome: str) -> tuple[int | None, list[int]]:
        tenant = self._settings.tenant(tenant_id)
        spec = current.spec
        first = 1 if spec.steps[0].channel == "welcome" else 0
        enrollment_id = await repo.insert_enrollment(
            s, per_customer=spec.trigger.once_per_customer, tenant=tenant_id, sop_id=spec.id,
            external_userid=external_userid, guide=guide,
            store_id=store_id, trigger_at=at, status="active", reason="",
            version=current.version, next_step=first, last_at=at if first else None,
            next_at=timing.step_time(spec, first, at, None, tenant))
        if enrollment_id is None:
            return None, []
        if first:
            status, _, reason = (welcome or "skipped: no WelcomeCode").partition(": ")
            await repo.insert_steps(s, [{
                "tenant": tenant_id, "enrollment_id": enrollment_id, "sop_id": spec.id,
                "version": current.version, "step_index": 0, "channel": "welcome",
                "message": spec.steps[0].message, "guide": guide,
                "external_userid": external_userid, "due_at": at, "status": status,
                "reason": reason, "created_at": utcnow()}])
        if timing.step_time(spec, first, at, None, tenant) is None:
            await repo.end_enrollments(s, ids=[enrollment_id], status="completed", reason="")
        welcome_ids: list[int] = []
        if first:  # a new enrollment's only step row so far is its welcome
            steps = await repo.enrollment_steps(s, enrollment_id=enrollment_id)
            welcome_ids = [st.id for st in steps
                           if st.channel == "welcome" and st.status == "queued" and st.id]
        log.info("enrolled tenant=%s sop=%s v%s enrollment=%s", tenant_id, spec.id,
                 current.version, enrollment_id)
        return enrollment_id, welcome_ids

    async def welcome_for(self, ctx: AddContext) -> Welcome | None:
        """Which SOP's welcome step this add's WelcomeCode sends (the first matching SOP by
        id that starts with one), before anything is written: the welcome cannot wait for
        the enrollment. An SOP of `reach = "customer"` the customer is enrolled in already
        (through another guide) is passed over: this add will not enroll them, so its
        welcome is not theirs (the next SOP's, else the default welcome, goes out)."""
        if not ctx.can_welcome:
            return None
        taken: set[str] | None = None
        for sop_id, current in sorted((await self._added_matching(ctx)).items()):
            if current.spec.steps[0].channel != "welcome":
                continue
            if current.spec.trigger.once_per_customer:
                if taken is None:  # read only when such an SOP would send the welcome
                    async with self._db.read() as s:
                        taken = {e.sop_id for e in await repo.customer_enrollment_refs(
                            s, tenant=ctx.tenant, external_userid=ctx.external_userid)}
                if sop_id in taken:
                    continue
            return Welcome(sop_id, current.spec.steps[0].message)
        return None

    async def on_contact_added(self, ctx: AddContext, welcome: Welcome | None = None,
                               delivery: str = "") -> None:
        """Enroll into every matching contact_added SOP. The SOP whose welcome was sent
        (`welcome`, with the outbox's `delivery` status) has its welcome step recorded as
        sent or failed; the others' welcome steps are skipped (one WelcomeCode, one send)."""
        sent = delivery in ("done", "duplicate")
        for sop_id, current in sorted((await self._added_matching(ctx)).items()):
            status = ""
            if current.spec.steps[0].channel == "welcome":
                status = ("skipped: no WelcomeCode or a channel welcome" if welcome is None
                          else "skipped: another SOP's welcome was sent"
                          if welcome.sop_id != sop_id
                          else "sent" if sent else f"failed: welcome {delivery or 'not sent'}")
            await self.enroll(ctx.tenant, sop_id, external_userid=ctx.external_userid,
                              guide=ctx.guide, at=ctx.at, store_id=ctx.store_id, welcome=status)

    async def _added_matching(self, ctx: AddContext) -> dict[str, versions.Current]:
        currents = await self.specs(ctx.tenant)
        candidates = {sop_id: c for sop_id, c in currents.items()
                      if c.enabled and _added_matches(c.spec, ctx, None)}
        tags = set(ctx.channel_tags)
        if any(_names_tags(c.spec.trigger.audience) for c in candidates.values()):
            async with self._db.read() as s:  # only when an audience asks: a burst's adds
                tags |= set(await tags_repo.customer_tag_names(  # are mostly new customers
                    s, tenant=ctx.tenant, external_userid=ctx.external_userid))
        return {sop_id: c for sop_id, c in candidates.items()
                if c.spec.trigger.audience.admits(tags, ctx.store_id)}

    async def exit(self, tenant: str, external_userid: str, rule: str, *,
                   guide: str | None = None) -> int:
        """End the customer's enrollments whose SOP exits on `rule`; cancel pending steps."""
        currents = await self.specs(tenant)
        exiting = {sop_id for sop_id, c in currents.items() if rule in c.spec.exits}
        if not exiting:  # no SOP ends on this rule: nothing to read or write
            return 0
        return await self._end(tenant, external_userid, rule, lambda e: (
            (guide is None or e.guide == guide) and e.sop_id in exiting))

    async def stop(self, tenant: str, external_userid: str, reason: str) -> int:
        """End every enrollment of the customer whatever their SOP's exits (an opt-out);
        cancel pending steps. Returns how many were ended."""
        return await self._end(tenant, external_userid, reason, lambda e: True)

    async def _end(self, tenant: str, external_userid: str, reason: str,
                   which: Callable[[Any], bool], known: list[Any] | None = None) -> int:
        """End the active and completed enrollments `which` admits ((id, sop_id, guide,
        status) rows); `known`: those rows, read just before by the caller."""
        def ending(e: Any) -> bool:
            return e.status in ("active", "completed") and which(e)

        if known is None:
            async with self._db.read() as s:  # most customers have nothing to end: no write
                known = await repo.customer_enrollment_refs(s, tenant=tenant,
                                                            external_userid=external_userid)
        if not any(ending(e) for e in known):
            return 0
        async with self._db.write() as s:  # read again under the write lock
            found = await repo.customer_enrollment_refs(s, tenant=tenant,
                                                        external_userid=external_userid)
            ids = [int(e.id) for e in found if ending(e)]
            await repo.end_enrollments(s, ids=ids, status="exited", reason=reason)
            cancelled = await repo.cancel_pending_steps(s, enrollment_ids=ids,
                                                        reason=f"exit: {reason}")
        if ids:
            log.info("exit %s tenant=%s enrollments=%s steps cancelled=%s", reason, tenant,
                     len(ids), cancelled)
        return len(ids)

    async def on_order_paid(self, tenant: str, external_userid: str | None, guide: str | None,
                            at: datetime) -> None:
        if not external_userid:
            return
        # One read for the exit and the trigger: every order of a peak comes this way.
        currents = await self.specs(tenant)
        exiting = {sop_id for sop_id, c in currents.items() if "order_paid" in c.spec.exits}
        matching = [c for c in currents.values()
                    if c.enabled and c.spec.trigger.on == "order_paid"]
        if not exiting and not matching:
            return
        async with self._db.read() as s:
            known = await repo.customer_enrollment_refs(s, tenant=tenant,
                                                        external_userid=external_userid)
            seen = await self._seen(s, tenant, external_userid, guide, matching)
        if exiting:
            await self._end(tenant, external_userid, "order_paid",
                            lambda e: e.sop_id in exiting, known)
        # enrolling again would do nothing (per customer: through any guide)
        enrolled = {(e.sop_id, e.guide) for e in known} | {(e.sop_id, None) for e in known}
        await self._enroll_matching(tenant, external_userid, at, None, seen, [
            c for c in matching if (c.spec.id, None if c.spec.trigger.once_per_customer
                                    else seen[1]) not in enrolled])

    async def on_tag_added(self, tenant: str, external_userid: str, guide: str, tag: str,
                           at: datetime) -> None:
        await self.exit(tenant, external_userid, f"tag_added:{tag}")
        await self._trigger(tenant, "tag_added", external_userid, guide, at, tag)

    async def _trigger(self, tenant: str, on: str, external_userid: str, guide: str | None,
                       at: datetime, tag: str | None) -> None:
        currents = await self.specs(tenant)
        matching = [c for c in currents.values() if c.enabled and c.spec.trigger.on == on]
        if not matching:
            return
        async with self._db.read() as s:
            seen = await self._seen(s, tenant, external_userid, guide, matching)
        await self._enroll_matching(tenant, external_userid, at, tag, seen, matching)

    async def _seen(self, s: AsyncSession, tenant: str, external_userid: str,
                    guide: str | None, matching: list[versions.Current]
                    ) -> tuple[set[str], str | None]:
        """What a trigger needs to know of the customer: their tags (only when an audience
        names tags) and the guide (the event's, else the last active follow's)."""
        tags: set[str] = set()
        if not matching:
            return tags, guide
        if any(_names_tags(c.spec.trigger.audience) for c in matching):
            tags = set(await tags_repo.customer_tag_names(s, tenant=tenant,
                                                          external_userid=external_userid))
        if not guide:  # an order's attributed guide needs no follows read
            active = await repo.active_guides(s, tenant=tenant, external_userid=external_userid)
            guide = active[-1] if active else None
        return tags, guide

    async def _enroll_matching(self, tenant: str, external_userid: str, at: datetime,
                               tag: str | None, seen: tuple[set[str], str | None],
                               matching: list[versions.Current]) -> None:
        tags, guide = seen
        if not matching:
            return
        if not guide:
            log.info("%s trigger tenant=%s: customer has no active guide",
                     matching[0].spec.trigger.on, tenant)
            return
        for current in matching:
            audience = current.spec.trigger.audience
            named = set(audience.tags_any) | set(audience.tags_all)
            if tag is not None and named and tag not in named:
                continue
            if audience.admits(tags):
                await self.enroll(tenant, current.spec.id, external_userid=external_userid,
                                  guide=guide, at=at)

    async def on_group_created(self, tenant: str, *, chat_id: str, owner: str, name: str,
                               at: datetime) -> int:
        """A customer group was created: it enrolls in every enabled group SOP whose trigger
        admits its owner's store and its name (once per group and SOP, whatever callbacks
        repeat). Returns how many enrollments were made."""
        matching = [c for c in (await self.specs(tenant)).values()
                    if c.enabled and c.spec.for_groups]
        if not matching or not owner:
            return 0
        async with self._db.read() as s:
            guide = await contacts_repo.get_guide(s, tenant=tenant, userid=owner)
        store = guide.store_id if guide is not None else None
        enrolled = 0
        for current in matching:
            if not current.spec.trigger.admits_group(name, store):
                continue
            async with self._db.write() as s:
                made, _ = await self._enroll(s, tenant, current, chat_id, owner, at, store, "")
            enrolled += made is not None
        return enrolled

    async def _enroll_groups(self, tenant: str, current: versions.Current,
                             audience: Audience) -> int:
        """A group SOP started for the groups that exist now: every live group its trigger
        admits, narrowed by the audience's owners (`guides`) and `stores`, whose owner still
        works here; from now, as if each were created now. A group enrolled before is left
        alone."""
        if _names_tags(audience):
            raise ValidationFailed(f"audience: tags do not apply to customer groups (SOP "
                                   f"{current.spec.id!r}); choose groups by guides (their "
                                   "owners) and stores", code="sop.group_tags",
                                   sop_id=current.spec.id)
        async with self._db.read() as s:
            groups = await groups_repo.addressees(s, tenant=tenant)
        at, enrolled = self.clock(), 0
        trigger = current.spec.trigger
        for group in groups:
            if not (group.owner and group.owner_active
                    and trigger.admits_group(group.name, group.owner_store)
                    and audience.admits(set(), group.owner_store, group.owner)):
                continue
            async with self._db.write() as s:
                made, _ = await self._enroll(s, tenant, current, group.chat_id, group.owner,
                                             at, group.owner_store, "")
            enrolled += made is not None
        log.info("enrolled tenant=%s sop=%s v%s existing groups: %s new", tenant,
                 current.spec.id, current.version, enrolled)
        return enrolled

    async def on_birthdays(self, tenant: str, current: versions.Current, day: date,
                           customers: Sequence[str] = ()) -> int:
        """A birthday SOP's enrollments for one day of the tenant (its 00:00 is the trigger
        time): the customers (only those of `customers` when given) whose birthday is
        `days_before` days later, each once, through the relation an audience's enrolment
        would take (`once_for`) among their active ones not opted out and in the trigger's
        audience. Feb 29 birthdays are celebrated
        on Feb 28 in years without one. An enrollment of an earlier year that has ended is
        re-armed (step 0 again, the newest version); a customer enrolled in the SOP and
        active, or in this year's round, through any guide, is left alone. Returns how many
        were enrolled or re-armed."""
        spec, settings = current.spec, self._settings.tenant(tenant)
        birthday = day + timedelta(days=spec.trigger.days_before)
        at = datetime.combine(day, time(0), tzinfo=settings.tz).astimezone(UTC)
        audience = spec.trigger.audience
        async with self._db.write() as s:
            enrolled = await bulk.enroll_birthdays(
                s, tenant=tenant, sop_id=spec.id, version=current.version,
                cycle=birthday.year, month=birthday.month, day=birthday.day,
                leap_day=(birthday.month, birthday.day) == (2, 28)
                and not calendar.isleap(birthday.year),
                trigger_at=at, next_at=timing.step_time(spec, 0, at, None, settings),
                now=self.clock(), customers=customers, once=once_for(settings, self.clock()),
                audience=AudienceFilter(tags_any=audience.tags_any, tags_all=audience.tags_all,
                                        tags_none=audience.tags_none, stores=audience.stores))
        log.info("enrolled tenant=%s sop=%s v%s birthdays of %s: %s", tenant, spec.id,
                 current.version, birthday.isoformat()[5:], enrolled)
        return enrolled

    async def on_no_purchase(self, tenant: str, current: versions.Current, day: date) -> int:
        """A no_purchase SOP's enrollments for one day of the tenant (its 00:00 is the trigger
        time): the customers whose `since` moment (last purchase, or with "added" the
        relation's start for those who never bought) fell `days` days before, for the round
        of that day (YYYYMMDD), through their active relations not opted out and in the
        trigger's audience (each relation, or with reach "customer" once per customer through
        the relation an audience's enrolment takes). Returns how many were enrolled or
        re-armed."""
        spec, settings = current.spec, self._settings.tenant(tenant)
        trigger = spec.trigger
        moment = day - timedelta(days=trigger.days)
        start = datetime.combine(moment, time(0), tzinfo=settings.tz).astimezone(UTC)
        end = datetime.combine(moment + timedelta(days=1), time(0),
                               tzinfo=settings.tz).astimezone(UTC)
        at = datetime.combine(day, time(0), tzinfo=settings.tz).astimezone(UTC)
        audience = trigger.audience
        async with self._db.write() as s:
            enrolled = await sop_no_purchase.enroll_no_purchase(
                s, tenant=tenant, sop_id=spec.id, version=current.version,
                since=trigger.since, start=start, end=end,
                cycle=int(moment.strftime("%Y%m%d")), trigger_at=at,
                next_at=timing.step_time(spec, 0, at, None, settings), now=self.clock(),
                once=once_for(settings, self.clock()) if trigger.once_per_customer else None,
                audience=AudienceFilter(tags_any=audience.tags_any, tags_all=audience.tags_all,
                                        tags_none=audience.tags_none, stores=audience.stores))
        log.info("enrolled tenant=%s sop=%s v%s no purchase since %s: %s", tenant, spec.id,
                 current.version, moment.isoformat(), enrolled)
        return enrolled

    async def on_group_dismissed(self, tenant: str, chat_id: str) -> int:
        """A dismissed group's SOPs end and their pending steps are cancelled."""
        return await self.stop(tenant, chat_id, "group_dismissed")

    async def manual(self, tenant: str, sop_id: str, external_userid: str,
                     guide: str) -> tuple[int | None, bool]:
        current = (await self.specs(tenant)).get(sop_id)
        if current is None or not current.enabled:
            raise NotFound(f"SOP {sop_id!r} does not exist or is disabled", code="sop.unknown",
                           sop_id=sop_id)
        _customers_only(current.spec)
        if current.spec.steps[0].channel == "welcome":
            raise ValidationFailed(f"SOP {sop_id!r} starts with a welcome; it needs an add",
                                   code="sop.needs_add", sop_id=sop_id)
        enrollment_id, _ = await self.enroll(tenant, sop_id, external_userid=external_userid,
                                             guide=guide, at=self.clock())
        if enrollment_id is not None:
            return enrollment_id, True
        async with self._db.read() as s:  # enrolled before: that enrollment (per customer:
            found = await repo.find_enrollment(  # through any guide, the first)
                s, tenant=tenant, sop_id=sop_id, external_userid=external_userid,
                guide=None if current.spec.trigger.once_per_customer else guide)
        return (found.id if found else None), False

    async def enroll_audience(self, tenant: str, sop_id: str, audience: Audience) -> int:
        """Enroll every customer the audience admits, now (HQ starting an SOP for an existing
        customer base), once each: through one relation (`once_for`), and not at all when
        already enrolled in this SOP through any guide."""
        current = (await self.specs(tenant)).get(sop_id)
        if current is None or not current.enabled:
            raise NotFound(f"SOP {sop_id!r} does not exist or is disabled", code="sop.unknown",
                           sop_id=sop_id)
        if current.spec.steps[0].channel == "welcome":
            raise ValidationFailed(f"SOP {sop_id!r} starts with a welcome; it needs an add",
                                   code="sop.needs_add", sop_id=sop_id)
        if current.spec.for_groups:
            if audience.segment is not None:
                raise ValidationFailed("audience.segment: a segment is of customers; SOP "
                                       f"{sop_id!r} is for customer groups",
                                       code="sop.for_groups", sop_id=sop_id)
            return await self._enroll_groups(tenant, current, audience)
        at = self.clock()
        settings = self._settings.tenant(tenant)
        wanted = await audience_filter(self._db, settings, audience, at)
        async with self._db.write() as s:
            enrolled = await bulk.enroll_audience(
                s, tenant=tenant, sop_id=sop_id, version=current.version, first_step=0,
                trigger_at=at, next_at=timing.step_time(current.spec, 0, at, None, settings),
                audience=wanted, once=once_for(settings, at))
        log.info("enrolled tenant=%s sop=%s v%s audience: %s new", tenant, sop_id,
                 current.version, enrolled)
        return enrolled


def _added_matches(spec: SopSpec, ctx: AddContext, tags: set[str] | None) -> bool:
    """Whether an add enrolls into `spec`; with `tags` None, everything but the audience."""
    trigger = spec.trigger
    return (trigger.on == "contact_added" and ctx.state.startswith(trigger.state_prefix)
            and (not trigger.campaigns or ctx.campaign in trigger.campaigns)
            and (tags is None or trigger.audience.admits(tags, ctx.store_id)))


def _customers_only(spec: SopSpec) -> None:
    """A customer is enrolled by hand only in customer SOPs: groups enroll when created, or
    all at once as an audience."""
    if spec.for_groups:
        raise ValidationFailed(f"SOP {spec.id!r} is for customer groups: a group enrolls when "
                               "it is created (or existing groups as an audience)",
                               code="sop.for_groups", sop_id=spec.id)


def _names_tags(audience: Audience) -> bool:
    return bool(audience.tags_any or audience.tags_all or audience.tags_none)
