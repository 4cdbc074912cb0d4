"""create_app(settings): the aiohttp application with webhook, inbox, jobs and admin API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from guidebot.db.engine import Database
from guidebot.events import INTERNAL_PREFIX, Event, decode_internal
from guidebot.inbox import InboxProcessor, InboxWriter
from guidebot.jobs import Scheduler, schedule_defaults
from guidebot.routing import Context, Dispatcher
from guidebot.services import Services, build_services
from guidebot.settings import Settings
from guidebot.web.api import commerce as commerce_api
from guidebot.web.api import contacts as contacts_api
from guidebot.web.api import sop as sop_api
from guidebot.web.auth import admin_auth
from guidebot.web.keys import SERVICES
from guidebot.web.pages import guide_tasks
from guidebot.web.webhooks import orders as orders_webhook
from guidebot.wecom.client import BackoffConfig
from guidebot.wecom.crypto import CallbackCrypto
from guidebot.wecom.parse import parse_event
from guidebot.wecom.webhook import CallbackViews

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the running app owns; tests and the demo reach it through app[RUNTIME]."""

    services: Services
    writer: InboxWriter
    processor: InboxProcessor
    scheduler: Scheduler | None
    counters: Counter[str] = field(default_factory=Counter)
    background: set[asyncio.Task[None]] = field(default_factory=set)

    async def accept(self, tenant: str, plaintext: str) -> None:
        pressure = self.processor.pressure
        pressure.enter()
        try:
            item_id = await self.writer.submit(tenant, plaintext)
        finally:
            pressure.leave()
        if item_id is None:
            self.counters[f"{tenant}:duplicate"] += 1
            return
        self.counters[f"{tenant}:accepted"] += 1
        self.processor.enqueue(item_id, tenant, plaintext)

    async def drain(self) -> None:
        """Wait until every accepted callback has been handled (tests and the demo)."""
        await self.services.commerce.intake.drain()
        await self.processor.drain()


RUNTIME = web.AppKey("runtime", Runtime)


def create_app(settings: Settings, *, start_jobs: bool = True, workers: int = 8,
               backoff: BackoffConfig | None = None,
               clock: Callable[[], float] = time.time) -> web.Application:
    app = web.Application(middlewares=[admin_auth(settings)])
    db = Database(settings.database_url)
    services = build_services(settings, db, backoff=backoff)
    dispatcher = Dispatcher(_routers())

    async def publish(event: Event) -> str:
        return await dispatcher.dispatch(event, Context(services))

    services.publisher = publish

    async def process(item_id: int, tenant: str, payload: str) -> str:
        event = (decode_internal(payload) if payload.startswith(INTERNAL_PREFIX)
                 else parse_event(tenant, payload))
        return await dispatcher.dispatch(event, Context(services, item_id))

    runtime = Runtime(services, InboxWriter(db), InboxProcessor(db, process, workers=workers),
                      Scheduler(services) if start_jobs else None)
    app[RUNTIME] = runtime
    app[SERVICES] = services
    cryptos = {tid: CallbackCrypto(t, clock=clock) for tid, t in settings.tenants.items()}
    app.add_routes(CallbackViews(cryptos, runtime.accept).routes())
    app.add_routes(contacts_api.routes())
    app.add_routes(sop_api.routes())
    app.add_routes(orders_webhook.routes())
    app.add_routes(guide_tasks.routes())
    commerce_api.install(app)
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


def _routers() -> tuple:  # type: ignore[type-arg]
    import handlers  # only the app factory loads handlers (DESIGN §3)

    return tuple(handlers.ROUTERS)


async def _start(app: web.Application) -> None:
    runtime = app[RUNTIME]
    await runtime.services.record_tenants()
    sync = asyncio.create_task(runtime.services.sync_tags(), name="tag-sync")
    runtime.background.add(sync)
    sync.add_done_callback(runtime.background.discard)
    runtime.processor.start()
    replayed = await runtime.processor.replay()
    if replayed:
        log.info("replaying %s unprocessed inbox items", replayed)
    runtime.services.commerce.intake.start(runtime.processor.enqueue)  # after the replay
    if runtime.scheduler is not None:
        schedule_defaults(runtime.scheduler, list(runtime.services.settings.tenants))
        runtime.scheduler.start()


async def _stop(app: web.Application) -> None:
    runtime = app[RUNTIME]
    if runtime.scheduler is not None:
        runtime.scheduler.shutdown()
    for task in list(runtime.background):
        task.cancel()
    await asyncio.gather(*runtime.background, return_exceptions=True)
    await runtime.services.commerce.intake.close()
    await runtime.processor.close()
    await runtime.services.close()
    await runtime.services.db.dispose()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    lines = ["# TYPE guidebot_callbacks_total counter"]
    for key, value in sorted(request.app[RUNTIME].counters.items()):
        tenant, result = key.split(":", 1)
        lines.append(f'guidebot_callbacks_total{{tenant="{tenant}",result="{result}"}} {value}')
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")
