"""Contact events end to end: link, bind, profile, welcome, channel tags."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from guidebot import events as ev
from guidebot.contacts.links import AddOutcome, LinkService
from guidebot.contacts.profiles import ProfileService
from guidebot.contacts.tags import TagService
from guidebot.contacts.welcome import WelcomeService
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as repo
from guidebot.errors import ValidationFailed, WeComApiError
from guidebot.settings import Settings

if TYPE_CHECKING:
    from guidebot.sop.engine import SopEngine, Welcome

log = logging.getLogger(__name__)

PROFILE_WAIT_S = 3.0  # the welcome must leave well inside WeCom's 20 s window
NO_RELATION = 84061  # FACTS §3.12: 不存在外部联系人的关系


class ContactsService:
    def __init__(self, settings: Settings, db: Database, links: LinkService,
                 profiles: ProfileService, tags: TagService, welcome: WelcomeService) -> None:
        self._settings = settings
        self._db = db
        self.links = links
        self.profiles = profiles
        self.tags = tags
        self.welcome = welcome
        self.sop: SopEngine | None = None  # wired by build_services: SOP enrollment on adds

    async def on_added(self, event: ev.ContactAdded, inbox_id: int | None) -> None:
        tenant = self._settings.tenant(event.tenant)
        added = await self.links.record_add(tenant, event, inbox_id)
        name = await self._profile_name(event)
        sop_welcome = await self._enroll(event, added)
        if event.welcome_code:
            await self._welcome(event, added, name, sop_welcome)
        if added.code is not None:
            await self._channel_tags(event, added)

    async def on_guide_deleted(self, event: ev.ContactDeletedByGuide,
                               inbox_id: int | None) -> None:
        await self.links.record_guide_deleted(self._settings.tenant(event.tenant), event, inbox_id)

    async def on_customer_deleted(self, event: ev.ContactDeletedByCustomer,
                                  inbox_id: int | None) -> None:
        await self.links.record_customer_deleted(self._settings.tenant(event.tenant), event,
                                                 inbox_id)

    async def on_transfer_failed(self, event: ev.TransferFailed, inbox_id: int | None) -> None:
        await self.links.record_transfer_failed(self._settings.tenant(event.tenant), event,
                                                inbox_id)

    async def on_edited(self, event: ev.ContactEdited) -> None:
        """A guide edited remark or tags in the WeCom client: WeCom says only that (FACTS
        §2), so read the relation back and reconcile the tag mirror. A WeCom failure raises,
        so the inbox retries the event (bounded); 84061 means the relation is gone."""
        try:
            follow = await self.profiles.refresh(event.tenant, event.external_userid,
                                                 guide=event.guide)
        except WeComApiError as exc:
            if exc.errcode != NO_RELATION:
                raise
            follow = None
        if follow is None:
            log.info("edit tenant=%s guide=%s customer=%s: no such relation in WeCom",
                     event.tenant, event.guide, event.external_userid)
            return
        await self.tags.reconcile(event.tenant, guide=event.guide,
                                  external_userid=event.external_userid,
                                  tags=follow.get("tags") or [])

    async def _profile_name(self, event: ev.ContactAdded) -> str:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a cancellation
            # that arrives as the fetch completes, and a worker told to stop would carry on.
            async with asyncio.timeout(PROFILE_WAIT_S):
                name = await self.profiles.fetch(event.tenant, event.external_userid)
        except TimeoutError:
            log.warning("profile fetch slow tenant=%s customer=%s; welcome goes without name",
                        event.tenant, event.external_userid)
            return ""
        return name or ""

    async def _enroll(self, event: ev.ContactAdded, added: AddOutcome) -> Welcome | None:
        """SOP enrollment; an SOP welcome step replaces the default welcome (not a channel
        code's own one), so the add still gets one welcome from its one WelcomeCode."""
        if self.sop is None or event.half:
            return None
        from guidebot.sop.engine import AddContext

        code = added.code
        return await self.sop.on_contact_added(AddContext(
            tenant=event.tenant, guide=event.guide, external_userid=event.external_userid,
            at=event.created_at, state=event.state, campaign=code.campaign if code else "",
            store_id=added.store_id, channel_tags=tuple(json.loads(code.tags)) if code else (),
            can_welcome=bool(event.welcome_code) and not (code and code.welcome_message)))

    async def _welcome(self, event: ev.ContactAdded, added: AddOutcome, name: str,
                       sop_welcome: Welcome | None = None) -> None:
        chosen = sop_welcome.message if sop_welcome else None
        message = self.welcome.choose(chosen or (added.code.welcome_message if added.code
                                                 else None))
        if message is None:
            log.info("no welcome message configured tenant=%s", event.tenant)
            return
        async with self._db.read() as s:
            guide = await repo.get_guide(s, tenant=event.tenant, userid=event.guide)
            store = (await repo.get_store(s, tenant=event.tenant, store_id=added.store_id)
                     if added.store_id else None)
        values = {"customer": {"name": name},
                  "guide": {"name": guide.name if guide else "", "userid": event.guide},
                  "store": {"name": store.name if store else ""}}
        tenant = self._settings.tenant(event.tenant)
        outcome = await self.welcome.send(
            event.tenant, welcome_code=event.welcome_code, message=message, values=values,
            event_at=event.created_at, miniprogram_appid=tenant.miniprogram_appid,
            guide=event.guide)
        if sop_welcome is not None and self.sop is not None:
            await self.sop.welcome_sent(sop_welcome.step_ids, outcome.status)

    async def _channel_tags(self, event: ev.ContactAdded, added: AddOutcome) -> None:
        assert added.code is not None
        names = json.loads(added.code.tags)
        try:
            tag_ids = await self.tags.resolve(event.tenant, names)
        except ValidationFailed as exc:
            log.warning("channel code %s tags not applied tenant=%s: %s", added.code.id,
                        event.tenant, exc)
            return
        await self.tags.apply(event.tenant, guide=event.guide,
                              external_userid=event.external_userid, tag_ids=tag_ids,
                              reason=f"code{added.code.id}")
