"""Order ingestion: attribute once at paid time, earn, claw back refunds (held until the order)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot import events as ev
from guidebot import inbox
from guidebot.commerce import attribution, clawback, ledger, recording
from guidebot.commerce.evidence import decode_lines
from guidebot.commerce.identity import IdentityService, remember_in, resolve_local
from guidebot.commerce.rules import RuleSet
from guidebot.commerce.schema import PaidOrder, RefundEvent
from guidebot.db.engine import Database
from guidebot.db.models_commerce import Refund, RuleVersion, Touch, TrackedLink
from guidebot.db.repo import commerce_ledger as ledger_repo
from guidebot.db.repo import commerce_links as links_repo
from guidebot.db.repo import commerce_orders as repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo.commerce_driver import ORDER_COLUMNS, TOUCH_COLUMNS
from guidebot.settings import TenantSettings

log = logging.getLogger(__name__)

# 自动打标签 (contacts/auto_tags.py AutoTagger.order_tagger): asked once per transaction for the
# tenant; None, or what gives a recorded order's AutoTagsDue from (order_no, paid_at, lines'
# (sku, category), paid fen, customer, credited guide).
OrderTagger = Callable[[str, datetime, list[tuple[str, str]], int, str | None, str | None],
                       ev.Event | None]
OrderTags = Callable[[str], OrderTagger | None]
Notify = Callable[[], None]  # wakes the inbox processor after staged events commit


def order_tags_due(tagger: OrderTagger | None, order: PaidOrder, customer: str | None,
                   guide: str | None) -> list[tuple[ev.Event, str]]:
    """The (event, inbox key) to stage, in the transaction recording the order, for the
    `[[on_order]]` auto-tags a recorded order earns (none without a tagger or a match)."""
    tagged = (tagger(order.order_no, order.paid_at, [(i.sku, i.category) for i in order.items],
                     order.amount_fen, customer, guide) if tagger else None)
    return [] if tagged is None else [(tagged, ev.internal_key(tagged))]


@dataclass
class Outcome:
    status: str  # recorded | duplicate | applied | held
    body: dict[str, Any]
    events: list[ev.Event] = field(default_factory=list)


def _allocations(refund: Refund) -> list[clawback.Allocation]:
    return [clawback.Allocation(**d) for d in json.loads(refund.allocation)]


async def ensure_rules(s: AsyncSession, tenant: TenantSettings, now: datetime) -> RuleVersion:
    """Record the configured rules as a new version when they differ from the latest."""
    rules = RuleSet.from_settings(tenant.commission)
    latest = await repo.latest_rules(s, tenant=tenant.id)
    if latest is not None and latest.config_hash == rules.config_hash:
        return latest
    log.info("commission rules version recorded tenant=%s hash=%s", tenant.id,
             rules.config_hash[:12])
    return await repo.add_rules(s, tenant=tenant.id, config_hash=rules.config_hash,
                                rules=rules.to_json(), at=now)


class OrderService:
    def __init__(self, db: Database, identity: IdentityService,
                 clock: Callable[[], datetime], *, order_tags: OrderTags | None = None) -> None:
        self._db = db
        self._identity = identity
        self._clock = clock
        self._order_tags = order_tags
        self._notify: Notify | None = None

    def start(self, notify: Notify) -> None:
        """`notify` hands the rows `paid` staged to the inbox processor after their commit
        (as the orders webhook's intake does), not at its next poll."""
        self._notify = notify

    async def record_rules(self, tenant: TenantSettings) -> None:
        async with self._db.write() as s:
            await ensure_rules(s, tenant, self._clock())

    async def paid(self, tenant: TenantSettings, order: PaidOrder, *,
                   resolve_remote: bool = True) -> Outcome:
        if resolve_remote:
            customer = await self._identity.resolve(tenant.id, order.customer)
        else:
            async with self._db.read() as s:
                customer = await resolve_local(s, tenant.id, order.customer)
        now = self._clock()
        async with self._db.write() as s:
            await ledger_repo.lock_tenant(s, tenant=tenant.id)
            if await repo.get_order(s, tenant=tenant.id, order_no=order.order_no):
                return Outcome("duplicate", {"status": "duplicate", "order_no": order.order_no})
            await ensure_rules(s, tenant, now)
            version = await repo.rules_at(s, tenant=tenant.id, at=order.paid_at)
            assert version is not None and version.id is not None
            link = (await links_repo.get_link(s, tenant=tenant.id, token=order.tracking)
                    if order.tracking else None)
            decision = await self._decide(s, tenant, order, customer, version, link)
            row = dict(zip(ORDER_COLUMNS, recording.order_row(
                tenant.id, order, customer, decision, version.id, paid_at=order.paid_at,
                received_at=now), strict=True))
            if not await repo.insert_order(s, values=row):
                return Outcome("duplicate", {"status": "duplicate", "order_no": order.order_no})
            await self._after_insert(s, tenant, order, customer, link, decision, now)
            applied = [await apply_refund(s, tenant, r, now) for r in
                       await repo.refunds_of(s, tenant=tenant.id, order_no=order.order_no,
                                             status="held")]
            tagger = self._order_tags(tenant.id) if self._order_tags else None
            staged = order_tags_due(tagger, order, customer, decision.attribution.guide)
            await inbox.stage_many(s, staged)
        if staged and self._notify is not None:
            self._notify()
        guide = decision.attribution.guide
        paid_event = ev.OrderPaid(tenant=tenant.id, created_at=order.paid_at,
                                  order_no=order.order_no, external_userid=customer,
                                  guide=guide, store_id=order.store_id,
                                  amount_fen=order.amount_fen)
        body = {"status": "recorded", "order_no": order.order_no,
                "rule": decision.attribution.rule, "guide": guide,
                "commission_fen": decision.commission_fen,
                "refunds_applied": [a.body["refund_no"] for a in applied]}
        return Outcome("recorded", body, [paid_event] + [e for a in applied for e in a.events])

    async def _decide(self, s: AsyncSession, tenant: TenantSettings, order: PaidOrder,
                      customer: str | None, version: RuleVersion,
                      link: TrackedLink | None) -> recording.Decision:
        rules = RuleSet.from_json(version.rules)
        start = order.paid_at - timedelta(days=rules.share_link_window_days)
        rows = await links_repo.touches_between(
            s, tenant=tenant.id, external_userid=customer, unionid=order.customer.unionid,
            openid=order.customer.openid, start=start, end=order.paid_at)
        touches = [attribution.TouchFact(t.guide, t.at, t.token, t.kind, t.id) for t in rows]
        own = recording.own_touch(order, link)
        if own is not None:
            touches.append(own)
        bindings = (await contacts_repo.list_bindings(s, tenant=tenant.id,
                                                      external_userid=customer)
                    if customer else [])
        facts = [attribution.BindingFact(b.guide, b.started_at, b.ended_at, b.end_reason, b.id)
                 for b in bindings]
        return recording.decide_order(
            rules, order, touch=attribution.latest_touch(rules, order.paid_at, touches),
            bindings=facts, link_known=link is not None)

    async def _after_insert(self, s: AsyncSession, tenant: TenantSettings, order: PaidOrder,
                            customer: str | None, link: TrackedLink | None,
                            decision: recording.Decision, now: datetime) -> None:
        if customer:
            await contacts_repo.ensure_customer(s, tenant=tenant.id, external_userid=customer)
            await remember_in(s, tenant.id, order.customer, customer, source="order")
        if link is not None:
            await links_repo.add_touch(s, touch=Touch(**dict(zip(TOUCH_COLUMNS, (
                recording.tracking_touch_row(None, tenant.id, order, customer, link,
                                             at=order.paid_at)), strict=True))))
        guide = decision.attribution.guide
        if guide:
            await ledger.append(s, tenant, key=recording.earn_key(order.order_no), kind="earn",
                                guide=guide, amount_fen=decision.commission_fen, at=now,
                                order_no=order.order_no)

    async def refunded(self, tenant: TenantSettings, refund: RefundEvent) -> Outcome:
        now = self._clock()
        async with self._db.write() as s:
            await ledger_repo.lock_tenant(s, tenant=tenant.id)
            inserted = await repo.insert_refund(s, values={
                "tenant": tenant.id, "refund_no": refund.refund_no, "order_no": refund.order_no,
                "refunded_at": refund.refunded_at, "status": "held",
                "items": json.dumps([list(i) for i in refund.items]),
                "amount_fen": refund.amount_fen, "allocation": "[]", "received_at": now})
            if not inserted:
                return Outcome("duplicate", {"status": "duplicate",
                                             "refund_no": refund.refund_no})
            order = await repo.get_order(s, tenant=tenant.id, order_no=refund.order_no)
            if order is None:
                log.info("refund held until its order arrives tenant=%s refund=%s",
                         tenant.id, refund.refund_no)
                return Outcome("held", {"status": "held", "refund_no": refund.refund_no})
            held = await repo.refunds_of(s, tenant=tenant.id, order_no=refund.order_no,
                                         status="held")
            mine = next(r for r in held if r.refund_no == refund.refund_no)
            return await apply_refund(s, tenant, mine, now)


async def apply_refund(s: AsyncSession, tenant: TenantSettings, refund: Refund,
                       now: datetime) -> Outcome:
    """Claw back a held refund of a recorded order (per order line, DESIGN §5.4)."""
    order = await repo.get_order(s, tenant=tenant.id, order_no=refund.order_no)
    assert order is not None
    lines = decode_lines(order.lines)
    done = await repo.refunds_of(s, tenant=tenant.id, order_no=order.order_no,
                                 status="applied")
    states = clawback.states_after(len(lines), [_allocations(r) for r in done])
    items = [(str(sku), int(amount)) for sku, amount in json.loads(refund.items)]
    allocations, unmatched = clawback.allocate(lines, states, items)
    fen = sum(a.clawback_fen for a in allocations)
    await repo.mark_applied(s, tenant=tenant.id, refund_no=refund.refund_no,
                            clawback_fen=fen,
                            allocation=json.dumps([asdict(a) for a in allocations]), at=now)
    if order.guide and fen:
        await ledger.append(s, tenant, key=f"clawback:{refund.refund_no}", kind="clawback",
                            guide=order.guide, amount_fen=-fen, at=now,
                            order_no=order.order_no, refund_no=refund.refund_no)
    if unmatched:
        log.warning("refund exceeds its order lines tenant=%s refund=%s unmatched_fen=%s",
                    tenant.id, refund.refund_no, unmatched)
    event = ev.OrderRefunded(tenant=tenant.id, created_at=refund.refunded_at,
                             order_no=order.order_no, refund_no=refund.refund_no,
                             external_userid=order.external_userid, guide=order.guide,
                             amount_fen=refund.amount_fen)
    return Outcome("applied", {"status": "applied", "refund_no": refund.refund_no,
                               "order_no": order.order_no, "clawback_fen": fen,
                               "unmatched_fen": unmatched}, [event])
