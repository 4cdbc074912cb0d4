"""The composition root: the whole service graph, built once per process in dependency order
and not changed afterwards; handlers, jobs and web views receive it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from guidebot import inbox
from guidebot.alerts.churn import ChurnAlerts
from guidebot.alerts.digest import MorningDigest
from guidebot.alerts.handoff_reply import HandoffReminders
from guidebot.alerts.radar import CardRadar, stager
from guidebot.app_quota import AppQuota
from guidebot.audit.log import AuditLog
from guidebot.backups import ScheduledBackups
from guidebot.chat.cards import KfCards
from guidebot.chat.guide import GuideChat
from guidebot.chat.intake import KfService
from guidebot.chat.opt_out import OptOuts
from guidebot.chat.reply_times import ReplyTimes
from guidebot.chat.routing import ChatRouter, load_router
from guidebot.chat.watch import ChatWatch
from guidebot.commerce.birthdays import Birthdays
from guidebot.commerce.links import announce_to
from guidebot.commerce.service import CommerceService
from guidebot.contacts.acquisition import AcquisitionService
from guidebot.contacts.auto_accept import ChannelAutoAccept
from guidebot.contacts.auto_tags import AutoTagger
from guidebot.contacts.channel_rotation import ChannelRotation
from guidebot.contacts.channels import ChannelService
from guidebot.contacts.directory import DirectoryService
from guidebot.contacts.group_codes import GroupCodeService
from guidebot.contacts.group_handover import GroupHandover
from guidebot.contacts.group_welcome import GroupWelcomeSync
from guidebot.contacts.groups import GroupService
from guidebot.contacts.pretags import PreTags
from guidebot.contacts.profiles import ProfileService
from guidebot.contacts.relations import RelationService
from guidebot.contacts.tag_library import TagLibrary
from guidebot.contacts.tags import TagService
from guidebot.contacts.transfers import CustomerTransfers
from guidebot.contacts.welcome import WelcomeService
from guidebot.content.library import Library, load_library
from guidebot.content.materials import load_materials
from guidebot.content.media import MediaUploads
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo.tokens import DbTokenStore
from guidebot.errors import WeComError
from guidebot.events import Event, internal_key
from guidebot.materials.contributions import Contributions
from guidebot.materials.points import Points
from guidebot.materials.service import MaterialService
from guidebot.materials.storage import PictureStore
from guidebot.metrics import Metrics
from guidebot.outbox import Executor, Outbox
from guidebot.retention import Retention
from guidebot.segments.service import Segments
from guidebot.segments.tagging import SegmentTagging
from guidebot.settings import Settings
from guidebot.sidebar.service import SidebarService
from guidebot.sidebar.tickets import AgentTickets
from guidebot.sop.executors import SopExecutors
from guidebot.sop.service import SopClock, SopService
from guidebot.stats.service import StatsService
from guidebot.stats.targets import Targets
from guidebot.usage.llm_meter import LlmMeter
from guidebot.wecom.client import BackoffConfig, WeComClient
from guidebot.workbench.service import Workbench
from guidebot.workbench.weekly import ManagerWeekly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    library: Library
    clients: Mapping[str, WeComClient]
    outbox: Outbox
    calls: Mapping[str, Executor]  # each kind of outbox call's executor, for retries
    relations: RelationService
    profiles: ProfileService
    tags: TagService
    welcome: WelcomeService
    channels: ChannelService
    channel_rotation: ChannelRotation  # 多人活码: each guide's daily add limit
    channel_auto_accept: ChannelAutoAccept  # 自动通过好友: skip_verify's window of the day
    acquisition: AcquisitionService  # 获客助手: the paid quota and each link's figures
    commerce: CommerceService
    sop: SopService
    media: MediaUploads  # content_library pictures uploaded for WeCom
    sidebar: SidebarService  # the guides' chat sidebar (web/pages/sidebar*.py)
    directory: DirectoryService  # guides' names and stores from the address book
    kf: KfService  # 微信客服 intake, sending and handoff (guidebot/chat/)
    chat: ChatRouter  # reply routing: rules, FAQ, catalog, LLM (guidebot/chat/routing.py)
    guide_chat: GuideChat  # guide commands in the app chat
    metrics: Metrics  # /metrics figures (guidebot/metrics.py)
    backups: ScheduledBackups  # [server.backup]: the daily SQLite copy
    stats: StatsService  # daily statistics for the console and metrics API
    materials: MaterialService  # the material centre (guidebot/materials/)
    contributions: Contributions  # guides' pictures and copy from the app chat
    points: Points  # contributors' points ledger, leaderboard and webhook
    churn: ChurnAlerts  # 删人提醒: a guide told that a customer deleted them
    radar: CardRadar  # 互动雷达: a guide told that their customer opened their card
    digest: MorningDigest  # 导购早报: each guide's day, once a day
    weekly: ManagerWeekly  # 店长周报: each store manager's store, once a week
    reply_times: ReplyTimes  # 接待时效: first responses after 微信客服 handoffs, who waits
    handoff_reminders: HandoffReminders  # 超时未回复提醒 to the servicer
    watch: ChatWatch  # 会话质检 of 微信客服 messages
    auto_tags: AutoTagger  # 自动打标签: tags from the cards customers open and what they write
    pretags: PreTags  # 预打标签: HQ's tags by unionid, marked when the customer adds a guide
    transfers: CustomerTransfers  # 在职继承 / 离职继承
    groups: GroupService  # 客户群: groups, members, joins and leaves
    group_codes: GroupCodeService  # 群活码: join ways for groups, joins counted per code
    group_handover: GroupHandover  # a leaver's groups to a new owner
    group_welcome: GroupWelcomeSync  # 入群欢迎语 templates from content_library
    app_quota: AppQuota  # every guide's app message budget (guidebot/app_quota.py)
    birthdays: Birthdays  # customers' birthdays from HQ's CRM (生日关怀 SOPs)
    targets: Targets  # guides' and stores' monthly targets (业绩目标)
    segments: Segments  # saved customer segments (客户分群)
    tag_library: TagLibrary  # 标签管理: HQ edits the corp tag library
    segment_tags: SegmentTagging  # 批量打标签: a tag on every customer of a segment
    retention: Retention  # 数据保留: old inbox items deleted, old texts blanked
    audit: AuditLog  # 操作日志: HQ's changes and console sign-ins
    workbench: Workbench  # 移动工作台: guides' and store managers' phone page

    def client(self, tenant: str) -> WeComClient:
        return self.clients[tenant]

    async def record_tenants(self) -> None:
        async with self.db.write() as s:
            for tenant in self.settings.tenants.values():
                await contacts_repo.ensure_tenant(s, tenant=tenant.id, corp_id=tenant.corp_id)

    async def sync_tags(self) -> None:
        """Sync every tenant's tag library; a WeCom outage here is logged, the job retries."""
        for tenant_id in self.settings.tenants:
            try:
                count = await self.tags.sync(tenant_id)
                log.info("tag library synced tenant=%s tags=%s", tenant_id, count)
            except WeComError as exc:
                log.warning("tag sync failed tenant=%s errcode=%s; retried by the job",
                            tenant_id, exc.errcode)

    async def raise_events(self, events: Sequence[Event]) -> None:
        """Store events the app raised (orders, refunds) in the inbox, each once by its key,
        for the handlers to take like callbacks. The orders path is to stage them in the
        order's own transaction instead (see README, pipeline)."""
        if not events:
            return
        async with self.db.write() as s:
            for event in events:
                await inbox.stage(s, event=event, key=internal_key(event))

    async def sync_directory(self) -> None:
        """Every tenant's members from the address book (at start; guides it does not list are
        checked by the daily job). An outage is logged and made up by the daily job."""
        for tenant_id in self.settings.tenants:
            try:
                await self.directory.sync_at_start(tenant_id)
            except WeComError as exc:
                log.warning("directory sync failed tenant=%s errcode=%s; retried by the job",
                            tenant_id, exc.errcode)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.chat.llm.close()


def build_services(settings: Settings, db: Database, *,
                   backoff: BackoffConfig | None = None) -> Services:
    library = load_library(settings.content_library)
    store = DbTokenStore(db)
    metrics = Metrics()
    clients = {tid: WeComClient(t, tokens=store, backoff=backoff or BackoffConfig(),
                                report=metrics.wecom_call)
               for tid, t in settings.tenants.items()}
    client_for = clients.__getitem__
    outbox = Outbox(db)
    app_quota = AppQuota(  # every app message to a guide draws from it
        db, lambda t: settings.tenant(t).quotas.app_msg_per_guide_per_min)
    media = MediaUploads(db, client_for, library)
    tags = TagService(db, client_for, outbox, library.tag_groups)
    auto_tags = AutoTagger(settings, db, library, tags)
    commerce = CommerceService(  # visits → CardOpened (互动雷达) and AutoTagsDue (自动打标签)
        settings, db, client_for, opened=announce_to(stager(settings), auto_tags.stage_open),
        order_tags=auto_tags.order_tagger)  # paid orders → AutoTagsDue
    profiles = ProfileService(db, client_for)
    points = Points(settings, db)
    materials = MaterialService(settings, db, load_materials(settings.content_library),
                                commerce.catalog, outbox, client_for,
                                tracker=commerce.track_attachments, pictures=media.resolve,
                                store=PictureStore(settings.data_dir), points=points,
                                quota=app_quota)
    welcome = WelcomeService(settings, outbox, library, profiles, client_for,
                             tracker=commerce.track_attachments, pictures=media.resolve,
                             metrics=metrics, materials=materials)
    sop_clock = SopClock()
    sop_calls = SopExecutors(settings, db, library, client_for, tags=tags,
                             cards=commerce.track_attachments, pictures=media.resolve,
                             materials=materials, quota=app_quota, clock=sop_clock)
    sop = SopService(settings, db, library, client_for, outbox, sop_calls, clock=sop_clock,
                     quota=app_quota)
    chat = load_router(settings.content_library, settings.llm, library=library,
                       catalog=commerce.catalog, meter=LlmMeter(db))
    guide_chat = GuideChat(settings, db, chat.content, chat, commerce, outbox, client_for,
                           quota=app_quota)
    watch = ChatWatch(settings, db, chat.content, outbox, client_for, quota=app_quota)
    kf = KfService(settings, db, library, outbox, client_for, router=chat, watch=watch,
                   cards=KfCards(settings, library, commerce.catalog,
                                 commerce.track_attachments, media.resolve),
                   opt_outs=OptOuts(db, tags, sop.engine,
                                    lambda: chat.content.opt_out_tag),
                   quota=app_quota, auto_tags=auto_tags)
    cover = f"{settings.server.public_url}/sidebar/_static/card.png"
    sidebar = SidebarService(db, library, tags, commerce.links,
                             AgentTickets(db, client_for), lambda tenant: cover, client_for)
    churn = ChurnAlerts(settings, db, chat.content, outbox, client_for, quota=app_quota)
    radar = CardRadar(settings, db, chat.content, commerce.catalog, outbox, client_for,
                      quota=app_quota)
    reply_times = ReplyTimes(settings, db)
    handoff_reminders = HandoffReminders(settings, db, chat.content, reply_times, outbox,
                                         client_for, quota=app_quota)
    targets = Targets(settings, db)
    digest = MorningDigest(settings, db, chat.content, guide_chat, outbox, client_for,
                           quota=app_quota, targets=targets)
    relations = RelationService(settings, db)
    transfers = CustomerTransfers(settings, db, outbox, client_for, relations,
                                  content=chat.content, quota=app_quota)
    stats = StatsService(settings, db)
    workbench = Workbench(settings, db, library, stats, targets, guide_chat)
    weekly = ManagerWeekly(settings, db, chat.content, workbench, stats, outbox, client_for,
                           quota=app_quota)
    groups = GroupService(db, client_for)
    group_codes = GroupCodeService(db, client_for)
    group_handover = GroupHandover(db, outbox, client_for, groups)
    group_welcome = GroupWelcomeSync(settings, db, library, outbox, client_for, media)
    channel_rotation = ChannelRotation(settings, db, outbox, client_for)
    channel_auto_accept = ChannelAutoAccept(settings, db, outbox, client_for)
    segments = Segments(settings, db, clock=sop_clock,
                        fields=lambda: library.profile_fields)
    calls = MappingProxyType({**welcome.executors(), **tags.executors(),
                              **sop_calls.executors(), **kf.executors(),
                              **guide_chat.executors(), **materials.executors(),
                              **churn.executors(), **radar.executors(),
                              **digest.executors(), **weekly.executors(),
                              **handoff_reminders.executors(),
                              **watch.executors(),
                              **transfers.executors(),
                              **group_handover.executors(), **group_welcome.executors(),
                              **channel_rotation.executors(),
                              **channel_auto_accept.executors()})
    return Services(
        settings=settings, db=db, library=library, clients=clients, outbox=outbox,
        calls=calls, relations=relations, profiles=profiles, tags=tags,
        welcome=welcome, channels=ChannelService(
            db, client_for, tags, library, verify=channel_auto_accept.wanted,
            recheck=channel_rotation.recheck_held),
        channel_rotation=channel_rotation, channel_auto_accept=channel_auto_accept,
        acquisition=AcquisitionService(settings, db, client_for),
        commerce=commerce, sop=sop, media=media, sidebar=sidebar,
        directory=DirectoryService(db, client_for, library), kf=kf, chat=chat,
        guide_chat=guide_chat, metrics=metrics,
        backups=ScheduledBackups(settings, metrics),
        stats=stats, materials=materials,
        contributions=Contributions(materials, client_for), points=points, churn=churn,
        radar=radar, digest=digest, auto_tags=auto_tags, pretags=PreTags(settings, db, tags),
        reply_times=reply_times,
        handoff_reminders=handoff_reminders, watch=watch,
        app_quota=app_quota, transfers=transfers, groups=groups, group_codes=group_codes,
        group_handover=group_handover, group_welcome=group_welcome,
        birthdays=Birthdays(db, sop.birthdays_set), targets=targets,
        segments=segments, tag_library=TagLibrary(db, client_for, tags),
        segment_tags=SegmentTagging(db, outbox, segments, tags.executors()["mark_tag"]),
        retention=Retention(settings, db),
        audit=AuditLog(db),
        workbench=workbench, weekly=weekly)
