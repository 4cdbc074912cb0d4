"""Guide commands in the app chat (今日任务, 客户, 分享, 业绩, 话术, 建议): a text a guide sends
to the app is answered with `message/send` to that guide, once per message (outbox key)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from guidebot.app_quota import AppQuota
from guidebot.chat import assist
from guidebot.chat.decision import CustomerContext, Inbound
from guidebot.chat.routing import ChatRouter, yuan
from guidebot.chat.words import fold
from guidebot.commerce import periods
from guidebot.commerce.links import LinkRequest
from guidebot.commerce.service import CommerceService
from guidebot.commerce.statements import statement
from guidebot.commerce.views import customer_card
from guidebot.content.catalog import Product
from guidebot.content.chat import ChatContent
from guidebot.db.engine import Database
from guidebot.db.repo import guide_chat as repo
from guidebot.db.repo import notes as notes_repo
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.events import AppTextMessage
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings, TenantSettings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

TEXT_BYTES = 2048  # message/send text.content limit (FACTS §3.7)
OPEN_TASKS = ("queued", "sending", "sent")  # still the guide's business, whatever the day
TASKS_LISTED = 10
ORDERS_LISTED = 3
SHARE_CAMPAIGN = "guide_chat"
APP_TEXT = "app_text"

Command = Callable[[TenantSettings, str, str], Awaitable[str]]


def _cut(text: str) -> str:
    return text.encode()[:TEXT_BYTES].decode(errors="ignore")


class GuideChat:
    def __init__(self, settings: Settings, db: Database, content: ChatContent,
                 router: ChatRouter, commerce: CommerceService, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], *, quota: AppQuota,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings, self.db, self.content, self.router = settings, db, content, router
        self.commerce, self.outbox, self.clock = commerce, outbox, clock
        self._client_for, self._quota = client_for, quota
        self._commands: dict[str, Command] = {
            "tasks": self.tasks, "customer": self.customer, "share": self.share,
            "sales": self.sales, "scripts": self.scripts, "suggest": self.suggest}

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of an answer: message/send to the guide, within their app
        message budget (guidebot/app_quota.py: over it the outbox holds the answer)."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {APP_TEXT: self.send}

    async def on_text(self, event: AppTextMessage) -> None:
        """Answer the guide; the message's id keys the send, so a replayed callback does not
        answer twice."""
        tenant = self.settings.tenant(event.tenant)
        name, argument = self.parse(event.content)
        reply = await self.answer(tenant, event.userid, name, argument)
        ident = event.msg_id or hashlib.sha256(
            f"{event.userid}\x1f{event.created_at.isoformat()}\x1f{event.content}".encode()
        ).hexdigest()[:32]
        outcome = await self.outbox.run(
            tenant=event.tenant, key=f"guide_chat:{ident}", kind=APP_TEXT,
            payload={"touser": event.userid, "msgtype": "text", "text": {"content": _cut(reply)}},
            call=self.send)
        log.info("guide command tenant=%s guide=%s command=%s send=%s", event.tenant,
                 event.userid, name or "help", outcome.status)

    def parse(self, text: str) -> tuple[str, str]:
        """(command, argument); ("", "") for anything that is not a command."""
        folded = fold(text)
        aliases = sorted(((fold(a), name) for name, words in self.content.commands.items()
                          for a in words), key=lambda item: -len(item[0]))
        for alias, name in aliases:
            if folded == alias:
                return name, ""
            if folded.startswith(alias):
                rest = folded[len(alias):]
                if rest[:1] == " " or not alias.isascii():
                    return name, text.strip()[len(alias):].strip()
        return "", ""

    async def answer(self, tenant: TenantSettings, guide: str, name: str, argument: str) -> str:
        command = self._commands.get(name)
        if command is None or (not argument and name not in ("tasks", "sales")):
            return self.content.text("help")
        return await command(tenant, guide, argument)

    async def tasks(self, tenant: TenantSettings, guide: str, _: str) -> str:
        today = self.clock().astimezone(tenant.tz).date()
        start, end = tenant.day_bounds(today, today)
        async with self.db.read() as s:
            count, due = await tasks_repo.guide_day_tasks(
                s, tenant=tenant.id, guide=guide, open_statuses=OPEN_TASKS, start=start,
                end=end, limit=TASKS_LISTED)
            # 跟进记录 whose follow-up day is today (customer names only, never note text)
            following, names = await notes_repo.follow_ups(
                s, tenant=tenant.id, guide=guide, day=today, limit=TASKS_LISTED)
        follow_up = ([self.content.text("tasks_follow_ups", count=following,
                                        customers="、".join(names))] if following else [])
        if not count:
            return "\n".join(follow_up) if follow_up else self.content.text("tasks_none")
        lines = [self.content.text("tasks_header", count=count)]
        for task in due:
            status = self.content.texts.get(f"task_status_{task.status}", task.status)
            lines.append(self.content.text("task_line", title=self.title(task.source),
                                           recipients=task.recipients, status=status))
        if count > len(due):
            lines.append(self.content.text("tasks_more", count=count - len(due)))
        return "\n".join(lines + follow_up)

    def title(self, source: str) -> str:
        """A task's title: its SOP's or drop's, else the id its source names."""
        kind, _, ident = source.partition(":")
        library = self.router.library
        spec: Any = (library.sops if kind == "sop" else library.drops).get(ident)
        return spec.title if spec is not None else ident

    async def customer(self, tenant: TenantSettings, guide: str, query: str) -> str:
        async with self.db.read() as s:
            found = await repo.customers_of_guide(s, tenant=tenant.id, guide=guide, query=query)
        if not found:
            return self.content.text("customer_none", query=query)
        view = await customer_card(self.db, tenant, found[0].external_userid)
        text = self.content.text
        orders = "；".join(text("order_line", date=o["paid_at"][:10], amount=yuan(o["amount_fen"]))
                          for o in view["orders"][-ORDERS_LISTED:][::-1])
        propensity = view["propensity"]
        profile = text(
            "customer_profile", name=view["name"] or view["external_userid"],
            tags="、".join(view["tags"]) or text("customer_no_tags"),
            guide=view["exclusive_guide"] or text("customer_no_guide"),
            orders=orders or text("customer_no_orders"),
            propensity=text("propensity_line", score=propensity["score"],
                            visits=propensity["visits_30d"],
                            categories="、".join(propensity["top_categories"])
                            or text("customer_no_categories")))
        if len(found) > 1:
            profile += "\n" + text("customer_more", count=len(found) - 1)
        return profile

    async def share(self, tenant: TenantSettings, guide: str, query: str) -> str:
        product = self.commerce.catalog.get(query.strip().upper()) or self._product(query)
        if product is None:
            return self.content.text("share_none", query=query)
        try:
            link = await self.commerce.links.create(tenant, LinkRequest(
                guide=guide, sku=product.sku, campaign=SHARE_CAMPAIGN))
        except ValidationFailed as exc:
            log.warning("share failed tenant=%s guide=%s sku=%s: %s", tenant.id, guide,
                        product.sku, exc)
            return self.content.text("share_none", query=query)
        return self.content.text("share_card", name=product.name, price=yuan(product.price_fen),
                                 page=link["page"])

    def _product(self, query: str) -> Product | None:
        named = self.router.mentioned(Inbound("", "", "", query, CustomerContext("")))
        if len(named) == 1:
            return named[0]
        hits = self.router.product_index.search(query, k=1)
        return self.commerce.catalog.get(hits[0].id) if hits else None

    async def sales(self, tenant: TenantSettings, guide: str, _: str) -> str:
        period = periods.of(self.clock(), tenant.tz)
        body = await statement(self.db, tenant, period)
        mine = next((r for r in body["statements"] if r["guide"] == guide), None)
        if mine is None:
            return self.content.text("sales_none", period=period)
        return self.content.text("sales", period=period, net=yuan(mine["net_fen"]),
                                 orders=mine["orders"], earned=yuan(mine["earned_fen"]),
                                 clawback=yuan(abs(mine["clawback_fen"])))

    async def scripts(self, tenant: TenantSettings, guide: str, query: str) -> str:
        found = assist.scripts(self.router, query)
        if not found:
            return self.content.text("scripts_none", query=query)
        return "\n".join([self.content.text("scripts_header"),
                          *(self.content.text("script_line", text=t) for t in found)])

    async def suggest(self, tenant: TenantSettings, guide: str, message: str) -> str:
        found = await assist.suggestions(self.router, tenant.id, message)
        if not found:
            return self.content.text("suggest_none")
        return "\n".join([self.content.text("suggest_header"),
                          *(self.content.text("suggest_line", number=n, text=t)
                            for n, t in enumerate(found, start=1))])
