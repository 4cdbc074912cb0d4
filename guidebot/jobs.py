"""The one APScheduler wrapper. Jobs are module-level functions taking plain arguments."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from guidebot import lanes
from guidebot.backups import CHECK_EVERY_S
from guidebot.content.reload import reload_library

if TYPE_CHECKING:
    from guidebot.services import Services

log = logging.getLogger(__name__)

Job = Callable[..., Awaitable[Any]]
STATS_UPKEEP_S = 30  # the console's figures are at most this much behind
LIBRARY_RELOAD_S = 5  # an edit applies within two looks (it must be the same on both)


class Scheduler:
    """Interval jobs on the running loop; job errors are logged with the job's name."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._scheduler = AsyncIOScheduler(timezone="UTC")

    def every(self, seconds: float, job: Job, *args: Any) -> None:
        self._scheduler.add_job(self._run, "interval", seconds=seconds, args=(job, *args),
                                id=f"{job.__name__}:{':'.join(map(str, args))}",
                                max_instances=1, coalesce=True)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def _run(self, job: Job, *args: Any) -> None:
        lanes.run_later()  # a burst's urgent work goes first (guidebot/lanes.py)
        try:
            await job(self._services, *args)
        except Exception:  # noqa: BLE001 - one failing run must not stop the schedule
            log.exception("job %s%s failed", job.__name__, args)


async def run_library_reload(services: Services) -> None:
    """Pick up edited content_library files: a valid edit replaces the library and the chat
    content, the catalog or the materials for every service (each validated on its own),
    records new SOP versions and brings HQ's materials into each tenant; an invalid part, or
    an edit removing a message that is still to be sent, is logged and changes nothing of
    that part."""
    outcome = await reload_library(services.library, chat=services.chat.content,
                                   catalog=services.commerce.catalog,
                                   materials=services.materials.library,
                                   in_use=services.sop.messages_in_use)
    if "materials" in outcome.parts:
        for tenant in services.settings.tenants:
            await services.materials.sync_library(tenant)
    if "library" not in outcome.parts:
        return
    services.tags.declare(services.library.tag_groups)
    await services.sop.library_replaced()
    if outcome.tags_changed:
        await services.sync_tags()  # creates tags newly declared in tags.toml
    for tenant in services.settings.tenants:
        await services.group_welcome.sync(tenant)


async def run_group_welcome_sync(services: Services, tenant: str) -> None:
    """The group welcome templates in WeCom kept in line with group_welcome.toml (nothing is
    called while they are)."""
    await services.group_welcome.sync(tenant)


async def run_points_webhook(services: Services, tenant: str) -> None:
    """Hand new points entries to the store's backend (when a webhook is configured)."""
    await services.points.push(tenant)


async def run_outbox_retry(services: Services) -> None:
    await services.outbox.retry_due(services.calls)


async def run_profile_refresh(services: Services, tenant: str) -> None:
    await services.profiles.fill_missing(tenant)


async def run_tag_sync(services: Services, tenant: str) -> None:
    await services.tags.sync(tenant)


async def run_relation_tag_sweep(services: Services, tenant: str) -> None:
    """Client-side tag edits whose edit_external_contact was lost: read back once a day
    (checked hourly, so a process restarted more often than daily still sweeps)."""
    await services.tags.sweep_if_due(tenant)


async def run_sop_dispatch(services: Services, tenant: str) -> None:
    """Plan due SOP steps, batch them into guide tasks and deliver them (any process)."""
    await services.sop.tick(tenant)


async def run_sop_singletons(services: Services, tenant: str) -> None:
    """Tag/deletion scans and content drops, in one process (PostgreSQL advisory lock)."""
    await services.sop.singletons(tenant)


async def run_sop_tracking(services: Services, tenant: str) -> None:
    """Confirmation of 群发 tasks; reminders to guides who have not confirmed."""
    await services.sop.track(tenant)


async def run_directory_sync(services: Services, tenant: str) -> None:
    """Guides' names, status and stores from the address book, once a day (checked hourly)."""
    await services.directory.sync_if_due(tenant)


async def run_guide_names(services: Services, tenant: str) -> None:
    """Guides first seen without a name (e.g. a failed read on an add) read again."""
    await services.directory.name_missing(tenant)


async def run_transfer_check(services: Services, tenant: str) -> None:
    """How waiting customer transfers stand (transfer_result), the done ones moved."""
    await services.transfers.check(tenant)


async def run_channel_rotation(services: Services, tenant: str) -> None:
    """多人活码 with a daily add limit: guides back in their codes on a new day, guides who
    left taken out (adds take a guide out at once, after the add)."""
    await services.channel_rotation.refresh_all(tenant)


async def run_channel_auto_accept(services: Services, tenant: str) -> None:
    """自动通过好友 with a window of the day: skip_verify set at the window's start and
    cleared at its end in WeCom (only when it differs from what WeCom was last told; one
    process at a time)."""
    await services.channel_auto_accept.refresh_all(tenant)


async def run_acquisition_quota(services: Services, tenant: str) -> None:
    """The paid 获客助手 quota read from WeCom once a day (checked hourly), for a tenant with
    link codes."""
    await services.acquisition.read_if_due(tenant)


async def run_group_sync(services: Services, tenant: str) -> None:
    """Every customer group read again from WeCom, once a day (checked hourly)."""
    await services.groups.sync_if_due(tenant)


async def run_morning_digest(services: Services, tenant: str) -> None:
    """导购早报: each guide's digest once the tenant's `morning_digest` time has come (checked
    every minute, so a process started later that day still sends it; once per guide and
    day across processes)."""
    await services.digest.run_if_due(tenant)


async def run_manager_weekly(services: Services, tenant: str) -> None:
    """店长周报: each store manager's report on each of their stores once the tenant's
    `manager_weekly` time of the week has come (checked every minute; once per manager,
    store and week across processes)."""
    await services.weekly.run_if_due(tenant)


async def run_handoff_reminders(services: Services, tenant: str) -> None:
    """超时未回复提醒: servicers whose handed-off 微信客服 customer has waited past
    `handoff_reply_minutes` are told (once per waiting stretch across processes)."""
    await services.handoff_reminders.run(tenant)


async def run_chat_watch(services: Services, tenant: str) -> None:
    """会话质检: the alert flags of 微信客服 messages go to the tenant's watch_notify members
    (once per flagged message and member across processes)."""
    await services.watch.notify(tenant)


async def run_segment_tag_resume(services: Services) -> None:
    """批量打标签 runs a stopped process left staging go on here once their lease ran out."""
    await services.segment_tags.resume()


async def run_pretags(services: Services, tenant: str) -> None:
    """预打标签 an import left to mark, or an add missed (known customers following a
    guide, with pending pre-tags)."""
    await services.pretags.apply_known(tenant)


async def run_stats_upkeep(services: Services) -> None:
    """Add new follow events, orders and ledger entries to the daily statistics (waiting
    out a burst of arrivals, guidebot/bursts.py)."""
    await services.stats.scheduled_upkeep()


async def run_retention(services: Services, tenant: str) -> None:
    """数据保留: old handled inbox items deleted, old 微信客服 texts and the texts of old
    finished outbox calls blanked, once a day (checked hourly; one process at a time)."""
    await services.retention.run_if_due(tenant)


async def run_scheduled_backup(services: Services) -> None:
    """[server.backup]: the day's copy of the SQLite database once `at` (UTC) has come
    (checked every minute, so a process started later that day makes it at once; a failure
    is tried again an hour later)."""
    await services.backups.run_if_due()


def schedule_defaults(scheduler: Scheduler, tenants: list[str], *,
                      backups: bool = False) -> None:
    if backups:
        scheduler.every(CHECK_EVERY_S, run_scheduled_backup)
    scheduler.every(5, run_outbox_retry)
    scheduler.every(LIBRARY_RELOAD_S, run_library_reload)
    scheduler.every(STATS_UPKEEP_S, run_stats_upkeep)
    scheduler.every(60, run_segment_tag_resume)
    for tenant in tenants:
        scheduler.every(2, run_sop_dispatch, tenant)
        scheduler.every(30, run_sop_singletons, tenant)
        scheduler.every(300, run_sop_tracking, tenant)
        scheduler.every(60, run_profile_refresh, tenant)
        scheduler.every(3600, run_tag_sync, tenant)
        scheduler.every(3600, run_relation_tag_sweep, tenant)
        scheduler.every(3600, run_directory_sync, tenant)
        scheduler.every(60, run_guide_names, tenant)
        scheduler.every(60, run_points_webhook, tenant)
        scheduler.every(300, run_transfer_check, tenant)
        scheduler.every(3600, run_group_sync, tenant)
        scheduler.every(60, run_group_welcome_sync, tenant)
        scheduler.every(60, run_channel_rotation, tenant)
        scheduler.every(60, run_channel_auto_accept, tenant)
        scheduler.every(3600, run_acquisition_quota, tenant)
        scheduler.every(60, run_morning_digest, tenant)
        scheduler.every(60, run_manager_weekly, tenant)
        scheduler.every(60, run_pretags, tenant)
        scheduler.every(60, run_handoff_reminders, tenant)
        scheduler.every(60, run_chat_watch, tenant)
        scheduler.every(3600, run_retention, tenant)
