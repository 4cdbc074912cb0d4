"""The service container: built once per process from settings, handed to handlers and jobs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from guidebot.commerce.service import CommerceService
from guidebot.contacts.channels import ChannelService
from guidebot.contacts.links import LinkService
from guidebot.contacts.profiles import ProfileService
from guidebot.contacts.service import ContactsService
from guidebot.contacts.tags import TagService
from guidebot.contacts.welcome import WelcomeService
from guidebot.content.library import Library, load_library
from guidebot.content.media import MediaUploads
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo.tokens import DbTokenStore
from guidebot.errors import WeComError
from guidebot.events import Event
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings
from guidebot.sop.service import SopService
from guidebot.stats.service import StatsService
from guidebot.wecom.client import BackoffConfig, WeComClient

log = logging.getLogger(__name__)

Publisher = Callable[[Event], Awaitable[str]]


@dataclass
class Services:
    settings: Settings
    db: Database
    library: Library
    clients: Mapping[str, WeComClient]
    outbox: Outbox
    contacts: ContactsService
    channels: ChannelService
    commerce: CommerceService
    sop: SopService

    publisher: Publisher | None = None
    media: MediaUploads | None = None  # content_library pictures uploaded for WeCom
    stats: StatsService | None = None  # daily statistics for the console and metrics API

    def client(self, tenant: str) -> WeComClient:
        return self.clients[tenant]

    async def publish(self, event: Event) -> str:
        """Route an internal event (e.g. OrderPaid) through the same handlers as callbacks."""
        if self.publisher is None:
            log.warning("no publisher wired; %s dropped", type(event).__name__)
            return "unpublished"
        return await self.publisher(event)

    async def record_tenants(self) -> None:
        async with self.db.write() as s:
            for tenant in self.settings.tenants.values():
                await contacts_repo.ensure_tenant(s, tenant=tenant.id, corp_id=tenant.corp_id)

    async def sync_tags(self) -> None:
        """Sync every tenant's tag library; a WeCom outage here is logged, the job retries."""
        for tenant_id in self.settings.tenants:
            try:
                count = await self.contacts.tags.sync(tenant_id)
                log.info("tag library synced tenant=%s tags=%s", tenant_id, count)
            except WeComError as exc:
                log.warning("tag sync failed tenant=%s errcode=%s; retried by the job",
                            tenant_id, exc.errcode)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


def _executors(clients: Mapping[str, WeComClient], tags: list[TagService]) -> dict[str, Executor]:
    async def welcome(tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await clients[tenant].send_welcome_msg(
            welcome_code=payload["welcome_code"], text=payload.get("text", {}).get("content"),
            attachments=payload.get("attachments", []))

    async def mark_tag(tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        result = await clients[tenant].mark_tag(
            userid=payload["userid"], external_userid=payload["external_userid"],
            add_tag=payload.get("add_tag", []), remove_tag=payload.get("remove_tag", []))
        await tags[0].mirror_marked(tenant, payload)
        return result

    return {"welcome": welcome, "mark_tag": mark_tag}


def build_services(settings: Settings, db: Database, *,
                   backoff: BackoffConfig | None = None) -> Services:
    library = load_library(settings.content_library)
    store = DbTokenStore(db)
    clients = {tid: WeComClient(t, tokens=store, backoff=backoff or BackoffConfig())
               for tid, t in settings.tenants.items()}
    tag_holder: list[TagService] = []
    executors = _executors(clients, tag_holder)
    outbox = Outbox(db, executors)
    tags = TagService(db, clients.__getitem__, outbox, library.tag_groups)
    tag_holder.append(tags)
    contacts = ContactsService(
        settings, db, LinkService(db), ProfileService(db, clients.__getitem__), tags,
        WelcomeService(outbox, library))
    channels = ChannelService(db, clients.__getitem__, tags, library)
    commerce = CommerceService(settings, db, clients.__getitem__)
    sop = SopService(settings, db, library, clients.__getitem__, outbox, tags=tags)
    executors.update(sop.executors())
    contacts.sop = sop.engine
    contacts.welcome.tracker = commerce.track_attachments
    sop.track_cards(commerce.track_attachments)
    pictures = MediaUploads(db, clients.__getitem__, library)
    contacts.welcome.pictures = pictures.resolve
    sop.upload_pictures(pictures.resolve)
    return Services(settings, db, library, clients, outbox, contacts, channels,
                    commerce=commerce, sop=sop, media=pictures,
                    stats=StatsService(settings, db))
