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
from guidebot.events import INTERNAL_PREFIX, decode_internal
from guidebot.inbox import InboxPolicy, InboxProcessor, InboxWriter
from guidebot.jobs import Scheduler, schedule_defaults
from guidebot.metrics import CONTENT_TYPE
from guidebot.routing import Context, EventRouter
from guidebot.services import Services, build_services
from guidebot.settings import Settings
from guidebot.web.api import audit as audit_api
from guidebot.web.api import birthdays as birthdays_api
from guidebot.web.api import commerce as commerce_api
from guidebot.web.api import contacts as contacts_api
from guidebot.web.api import drops as drops_api
from guidebot.web.api import group_codes as group_codes_api
from guidebot.web.api import groups as groups_api
from guidebot.web.api import kf as kf_api
from guidebot.web.api import materials as materials_api
from guidebot.web.api import pretags as pretags_api
from guidebot.web.api import segments as segments_api
from guidebot.web.api import sop as sop_api
from guidebot.web.api import tags as tags_api
from guidebot.web.api import targets as targets_api
from guidebot.web.api import transfers as transfers_api
from guidebot.web.api import usage as usage_api
from guidebot.web.api import watch as watch_api
from guidebot.web.audit_trail import audit_trail
from guidebot.web.auth import admin_auth, bearer_is
from guidebot.web.keys import SERVICES
from guidebot.web.pages import console, guide_tasks, operator, sidebar, workbench
from guidebot.web.request_lanes import off_the_loop
from guidebot.web.signin_throttle import SIGNINS, Held, SigninThrottle, retry_later, throttle_of
from guidebot.web.visit_limit import VISITS, VisitLimit
from guidebot.web.webhooks import orders as orders_webhook
from guidebot.wecom.client import BackoffConfig
from guidebot.wecom.crypto import CallbackCrypto
from guidebot.wecom.parse import parse_event
from guidebot.wecom.webhook import CallbackViews

log = logging.getLogger(__name__)
METRICS_SCOPE = ":metrics"  # the throttle's scope of /metrics' token (never a tenant id)


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
        self.services.stats.arrivals.note()
        with self.processor.acknowledging():
            item_id = await self.writer.submit(tenant, plaintext)
        if item_id is None:
            self.counters[f"{tenant}:duplicate"] += 1
            self.services.metrics.callback(tenant, "duplicate")
            return
        self.counters[f"{tenant}:accepted"] += 1
        self.services.metrics.callback(tenant, "accepted")
        self.processor.wake()

    async def drain(self) -> None:
        """Wait until every accepted callback has been handled (tests and the demo)."""
        await self.services.commerce.intake.drain()
        await self.processor.drain()
        await self.services.segment_tags.drain()


RUNTIME = web.AppKey("runtime", Runtime)
# Routes whose SQLite work stays inline on the loop (guidebot/web/request_lanes.py): WeCom's
# callbacks, store backends' orders and the reads of one order's evidence they poll (a few
# keyed reads each, at order rates: on aiosqlite's thread, 1,000 orders/s with polling went
# from an evidence p99 of 0.14–0.23 s to 4.4–6.1 s), customers' card visits and the health
# check. Every other route works on aiosqlite's thread.
HOT_ROUTES = ("/wecom/{tenant}/callback", "/orders/{tenant}", "/api/v1/{tenant}/orders/{order_no}",
              "/t/{token}", "/healthz")


def create_app(settings: Settings, *, start_jobs: bool = True, workers: int = 256,
               backoff: BackoffConfig | None = None,
               clock: Callable[[], float] = time.time,
               inbox: InboxPolicy | None = None) -> web.Application:
    app = web.Application(middlewares=[off_the_loop(HOT_ROUTES), admin_auth(settings),
                                      audit_trail])
    db = Database(settings.database_url)
    services = build_services(settings, db, backoff=backoff)
    router = EventRouter(_routers())

    async def process(item_id: int, tenant: str, payload: str) -> str:
        event = (decode_internal(payload) if payload.startswith(INTERNAL_PREFIX)
                 else parse_event(tenant, payload))
        return await router.dispatch(event, Context(services, item_id))

    processor = InboxProcessor(db, process, workers=workers, policy=inbox or InboxPolicy())
    runtime = Runtime(services, InboxWriter(db), processor,
                      Scheduler(services) if start_jobs else None)
    app[RUNTIME] = runtime
    app[SERVICES] = services
    app[SIGNINS] = SigninThrottle(settings.server, services.metrics)
    app[VISITS] = VisitLimit(settings.server)
    cryptos = {tid: CallbackCrypto(t, clock=clock) for tid, t in settings.tenants.items()}
    app.add_routes(CallbackViews(cryptos, runtime.accept, on_reject=lambda tenant, status:
                                 services.metrics.callback(tenant, f"rejected_{status}")).routes())
    app.add_routes(contacts_api.routes())
    app.add_routes(sop_api.routes())
    app.add_routes(orders_webhook.routes())
    app.add_routes(guide_tasks.routes())
    app.add_routes(sidebar.routes())
    app.add_routes(workbench.routes())
    app.add_routes(operator.routes())
    app.add_routes(usage_api.routes())
    app.add_routes(transfers_api.routes())
    app.add_routes(groups_api.routes())
    app.add_routes(group_codes_api.routes())
    app.add_routes(birthdays_api.routes())
    app.add_routes(pretags_api.routes())
    app.add_routes(targets_api.routes())
    app.add_routes(drops_api.routes())
    app.add_routes(segments_api.routes())
    app.add_routes(watch_api.routes())
    app.add_routes(tags_api.routes())
    app.add_routes(audit_api.routes())
    commerce_api.install(app)
    kf_api.install(app)
    materials_api.install(app)
    console.install(app)
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics)])
    app.on_response_prepare.append(_count_orders)
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
    released = await runtime.processor.recover()
    if released:
        log.info("%s inbox items a stopped process held are claimable again", released)
    taken = await runtime.services.outbox.recover(runtime.services.calls)
    if taken:
        log.info("%s outbox calls a stopped process was making are retried now", taken)
    resumed = await runtime.services.segment_tags.resume(at_start=True)
    if resumed:
        log.info("%s 批量打标签 runs a stopped process was staging go on now", resumed)
    directory = asyncio.create_task(runtime.services.sync_directory(), name="directory-sync")
    runtime.background.add(directory)
    directory.add_done_callback(runtime.background.discard)
    runtime.processor.start()
    runtime.services.commerce.intake.start(runtime.processor.wake)
    runtime.services.commerce.orders.start(runtime.processor.wake)
    if runtime.scheduler is not None:
        schedule_defaults(runtime.scheduler, list(runtime.services.settings.tenants),
                          backups=runtime.services.backups.configured)
        runtime.scheduler.start()


async def _stop(app: web.Application) -> None:
    runtime = app[RUNTIME]
    if runtime.scheduler is not None:
        runtime.scheduler.shutdown()
    for task in list(runtime.background):
        task.cancel()
    await asyncio.gather(*runtime.background, return_exceptions=True)
    await runtime.services.segment_tags.close()
    await runtime.services.commerce.intake.close()
    await runtime.processor.close()
    await runtime.services.close()
    await runtime.services.db.dispose()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text; with `[server] metrics_token` set, only for `Authorization: Bearer`
    that token (401 otherwise: the figures name every tenant)."""
    services = request.app[RUNTIME].services
    token = services.settings.server.metrics_token
    if token:
        # a wrong token counts like a wrong admin token, under its own scope
        checked = (throttle_of(request).bearer(request, METRICS_SCOPE,
                                               lambda: bearer_is(request, token))
                   if "Authorization" in request.headers else False)
        if isinstance(checked, Held):
            return retry_later(web.Response(status=429, text="metrics: too many wrong tokens "
                                            "from this address\n"), checked)
        if not checked:
            return web.Response(status=401, text="metrics: Authorization: Bearer <token>\n",
                                headers={"WWW-Authenticate": 'Bearer realm="guidebot"'})
    await services.metrics.refresh(services.db, services.settings.tenants)
    return web.Response(body=services.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def _count_orders(request: web.Request, response: web.StreamResponse) -> None:
    """Order webhook requests by status, for configured tenants only (bounded labels)."""
    route = request.match_info.route.resource
    if request.method != "POST" or route is None or route.canonical != "/orders/{tenant}":
        return
    services = request.app[RUNTIME].services
    tenant = request.match_info.get("tenant", "")
    if tenant in services.settings.tenants:
        services.metrics.order_received(tenant, response.status)
