"""Welcome messages: chosen per channel code, rendered, sent once per WelcomeCode in 20 s."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from guidebot.content.library import Library, Message
from guidebot.content.render import render
from guidebot.errors import ValidationFailed
from guidebot.outbox import Outbox, Outcome

log = logging.getLogger(__name__)

WELCOME_WINDOW = timedelta(seconds=20)  # FACTS §3.6
DEFAULT_MESSAGE = "welcome_default"
# (tenant id, guide userid, library attachments, campaign) → the attachments with every
# `miniprogram` + `sku` page tracked for that guide (CommerceService.track_attachments).
Tracker = Callable[[str, str, list[dict[str, Any]], str], Awaitable[list[dict[str, Any]]]]


def to_wecom_attachment(attachment: Mapping[str, Any], appid: str) -> dict[str, Any]:
    kind = attachment["type"]
    body = {k: v for k, v in attachment.items() if k not in ("type", "sku")}
    if kind == "miniprogram":
        body.setdefault("appid", appid)
    return {"msgtype": kind, kind: body}


class WelcomeService:
    def __init__(self, outbox: Outbox, library: Library,
                 tracker: Tracker | None = None) -> None:
        self._outbox = outbox
        self._library = library
        self.tracker = tracker  # wired by build_services once commerce exists

    def choose(self, message_id: str | None) -> Message | None:
        messages = self._library.messages
        return messages.get(message_id or "") or messages.get(DEFAULT_MESSAGE)

    async def send(self, tenant: str, *, welcome_code: str, message: Message,
                   values: Mapping[str, Mapping[str, str]], event_at: datetime,
                   miniprogram_appid: str, guide: str = "") -> Outcome:
        payload: dict[str, Any] = {"welcome_code": welcome_code}
        text = render(message.text, values) if message.text else ""
        if text:
            payload["text"] = {"content": text}
        if message.attachments:
            attachments = await self._tracked(tenant, guide, message)
            payload["attachments"] = [to_wecom_attachment(a, miniprogram_appid)
                                      for a in attachments]
        outcome = await self._outbox.run(
            tenant=tenant, key=f"welcome:{welcome_code}", kind="welcome", payload=payload,
            deadline=event_at + WELCOME_WINDOW, until_deadline=True)
        log.info("welcome tenant=%s message=%s outcome=%s", tenant, message.id, outcome.status)
        return outcome

    async def _tracked(self, tenant: str, guide: str, message: Message) -> list[dict[str, Any]]:
        """Mini-program cards with a sku carry the adding guide's tracking token (campaign
        "welcome:<message id>"); if a page cannot take one, the card goes untracked."""
        attachments = [dict(a) for a in message.attachments]
        if self.tracker is None or not guide:
            return attachments
        try:
            return await self.tracker(tenant, guide, attachments, f"welcome:{message.id}")
        except ValidationFailed as exc:
            log.warning("welcome card left untracked tenant=%s message=%s: %s", tenant,
                        message.id, exc)
            return attachments
