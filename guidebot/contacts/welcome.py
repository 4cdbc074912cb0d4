"""Welcome messages: chosen per channel code, rendered, sent once per WelcomeCode in 20 s."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from guidebot.contacts.profiles import ProfileService
from guidebot.contacts.relations import Relation
from guidebot.content.library import Library, Message
from guidebot.content.render import render
from guidebot.content.sop_spec import MATERIAL_MESSAGE
from guidebot.db.types import utcnow
from guidebot.errors import GuidebotError, ValidationFailed
from guidebot.metrics import Metrics
from guidebot.outbox import CallStatus, Executor, Outbox, Outcome
from guidebot.settings import Settings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

WELCOME_WINDOW = timedelta(seconds=20)  # FACTS §3.6
PROFILE_WAIT_S = 3.0  # the customer's name is worth a short wait, never the window
DEFAULT_MESSAGE = "welcome_default"
NOTE_CHARS = 100  # of why a welcome step was not sent (a step's reason holds 128)
# (tenant id, guide userid, library attachments, campaign) → the attachments with every
# `miniprogram` + `sku` page tracked for that guide (CommerceService.track_attachments).
Tracker = Callable[[str, str, list[dict[str, Any]], str], Awaitable[list[dict[str, Any]]]]
# (tenant id, attachments) → the attachments with every content_library picture file replaced
# by a live media id (MediaUploads.resolve); raises when an upload fails.
Pictures = Callable[[str, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


class StoredMaterials(Protocol):
    """The material centre, as an SOP's welcome step uses it (guidebot/materials/)."""

    async def for_task(self, tenant: str, material_id: str, guide: str, *,
                       moment: bool = False) -> Any: ...

    async def task_used(self, tenant: str, material_id: str, *, guide: str, channel: str,
                        key: str, token: str, customers: Sequence[str] = ()) -> bool: ...


def card_token(attachments: Sequence[Mapping[str, Any]]) -> str:
    """The tracking token of the first mini-program card in WeCom attachments ("" if none)."""
    for a in attachments:
        if a.get("msgtype") == "miniprogram":
            return parse_qs(urlsplit(str(a["miniprogram"].get("page", ""))).query).get(
                "t", [""])[0]
    return ""


def to_wecom_attachment(attachment: Mapping[str, Any], appid: str) -> dict[str, Any]:
    kind = attachment["type"]
    body = {k: v for k, v in attachment.items() if k not in ("type", "sku")}
    if kind == "miniprogram":
        body.setdefault("appid", appid)
    return {"msgtype": kind, kind: body}


class WelcomeCall:
    """The outbox executor of `welcome`: send_welcome_msg with the add's WelcomeCode."""

    def __init__(self, client_for: Callable[[str], WeComClient]) -> None:
        self._client_for = client_for

    async def __call__(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._client_for(tenant).send_welcome_msg(
            welcome_code=payload["welcome_code"], text=payload.get("text", {}).get("content"),
            attachments=payload.get("attachments", []))


class WelcomeService:
    def __init__(self, settings: Settings, outbox: Outbox, library: Library,
                 profiles: ProfileService, client_for: Callable[[str], WeComClient], *,
                 tracker: Tracker, pictures: Pictures, metrics: Metrics,
                 materials: StoredMaterials) -> None:
        self._call = WelcomeCall(client_for)
        self._materials = materials
        self._metrics = metrics
        self._settings = settings
        self._outbox = outbox
        self._library = library
        self._profiles = profiles
        self._tracker = tracker
        self._pictures = pictures

    def executors(self) -> dict[str, Executor]:
        """For retries of welcomes (the outbox's `calls`)."""
        return {"welcome": self._call}

    def choose(self, message_id: str | None) -> Message | None:
        messages = self._library.messages
        return messages.get(message_id or "") or messages.get(DEFAULT_MESSAGE)

    async def greet(self, relation: Relation, sop_message: str | None = None) -> Outcome | None:
        """The add's one welcome, with its WelcomeCode inside WeCom's window: the channel
        code's own message, else the SOP's welcome step (`sop_message`), else the default.
        Reads only what the message needs (the customer's name only if the text uses it)."""
        event = relation.event
        if (relation.own_welcome is None and sop_message
                and sop_message not in self._library.messages
                and sop_message.startswith(MATERIAL_MESSAGE)):
            return await self._greet_material(relation, sop_message.removeprefix(
                MATERIAL_MESSAGE))
        message = self.choose(relation.own_welcome or sop_message)
        if message is None:
            log.info("no welcome message configured tenant=%s", event.tenant)
            return None
        # 分时段欢迎语: the text for the add's time of day in the tenant's zone
        message = message.at(event.created_at.astimezone(self._settings.tenant(event.tenant).tz))
        deadline = event.created_at + WELCOME_WINDOW
        name = ""
        if "customer" in message.text:
            wait_s = min(PROFILE_WAIT_S, (deadline - utcnow()).total_seconds() / 2)
            name = await self._profiles.name(event.tenant, event.external_userid,
                                             wait_s=max(wait_s, 0.0))
        values = {"customer": {"name": name},
                  "guide": {"name": relation.guide_name, "userid": event.guide},
                  "store": {"name": relation.store_name}}
        return await self.send(
            event.tenant, welcome_code=event.welcome_code, message=message, values=values,
            event_at=event.created_at, guide=event.guide,
            miniprogram_appid=self._settings.tenant(event.tenant).miniprogram_appid,
            customer=event.external_userid)

    async def _greet_material(self, relation: Relation, material_id: str) -> Outcome:
        """An SOP's welcome step naming a stored material, checked now: a missing or withdrawn
        one sends nothing (the step fails with the reason); a sent one is one use of it,
        reaching this customer (the contributor's points with it)."""
        event = relation.event
        stored = await self._materials.for_task(event.tenant, material_id, event.guide)
        if isinstance(stored, str):
            log.warning("welcome tenant=%s not sent: %s", event.tenant, stored)
            return Outcome(CallStatus.DEAD, result={"refused": stored}, error=stored)
        payload: dict[str, Any] = {"welcome_code": event.welcome_code}
        if stored.text:
            payload["text"] = {"content": stored.text}
        if stored.attachments:
            payload["attachments"] = list(stored.attachments)
        outcome = await self._deliver(event.tenant, event.welcome_code, payload,
                                      event.created_at, MATERIAL_MESSAGE + material_id)
        await self._material_used(event.tenant, material_id, outcome, guide=event.guide,
                                  welcome_code=event.welcome_code,
                                  attachments=stored.attachments,
                                  customer=event.external_userid)
        return outcome

    async def _material_used(self, tenant: str, material_id: str, outcome: Outcome, *,
                             guide: str, welcome_code: str,
                             attachments: Sequence[Mapping[str, Any]], customer: str) -> None:
        """A sent welcome of a material (stored or HQ's library one) is one use of it,
        reaching its new customer (the contributor's points with it)."""
        if outcome.status in (CallStatus.DONE, CallStatus.DUPLICATE):
            await self._materials.task_used(
                tenant, material_id, guide=guide, channel="sop", key=f"welcome:{welcome_code}",
                token=card_token(attachments), customers=[customer])

    @staticmethod
    def note(outcome: Outcome | None) -> str:
        """What an SOP's welcome step records of the send: the outbox's status, or why
        nothing was sent."""
        if outcome is None:
            return ""
        refused = (outcome.result or {}).get("refused")
        return f"not sent ({refused})"[:NOTE_CHARS] if refused else str(outcome.status)

    async def send(self, tenant: str, *, welcome_code: str, message: Message,
                   values: Mapping[str, Mapping[str, str]], event_at: datetime,
                   miniprogram_appid: str, guide: str, customer: str) -> Outcome:
        payload: dict[str, Any] = {"welcome_code": welcome_code}
        text = render(message.text, values) if message.text else ""
        if text:
            payload["text"] = {"content": text}
        if message.attachments:
            attachments = await self._uploaded(tenant, message,
                                               await self._tracked(tenant, guide, message))
            if attachments:
                payload["attachments"] = [to_wecom_attachment(a, miniprogram_appid)
                                          for a in attachments]
        outcome = await self._deliver(tenant, welcome_code, payload, event_at, message.id)
        if message.id.startswith(MATERIAL_MESSAGE):
            await self._material_used(tenant, message.id.removeprefix(MATERIAL_MESSAGE),
                                      outcome, guide=guide, welcome_code=welcome_code,
                                      attachments=payload.get("attachments", []),
                                      customer=customer)
        return outcome

    async def _deliver(self, tenant: str, welcome_code: str, payload: dict[str, Any],
                       event_at: datetime, message_id: str) -> Outcome:
        outcome = await self._outbox.run(
            tenant=tenant, key=f"welcome:{welcome_code}", kind="welcome", payload=payload,
            call=self._call, deadline=event_at + WELCOME_WINDOW, until_deadline=True)
        log.info("welcome tenant=%s message=%s outcome=%s", tenant, message_id, outcome.status)
        if outcome.status == "done":  # from the add's CreateTime (WeCom gives whole seconds)
            self._metrics.observe_welcome(tenant, (utcnow() - event_at).total_seconds())
        return outcome

    async def _uploaded(self, tenant: str, message: Message,
                        attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Picture files as media ids. The welcome cannot wait for a retry (20 s), so an
        attachment whose picture fails to upload is left out and the rest still go."""
        out = []
        for item in attachments:
            try:
                out.extend(await self._pictures(tenant, [item]))
            except (GuidebotError, OSError) as exc:
                log.warning("welcome tenant=%s message=%s: %s attachment left out (%s)",
                            tenant, message.id, item["type"], type(exc).__name__)
        return out

    async def _tracked(self, tenant: str, guide: str, message: Message) -> list[dict[str, Any]]:
        """Mini-program cards with a sku carry the adding guide's tracking token (campaign
        "welcome:<message id>"); if a page cannot take one, the card goes untracked."""
        attachments = [dict(a) for a in message.attachments]
        if not guide:
            return attachments
        try:
            return await self._tracker(tenant, guide, attachments, f"welcome:{message.id}")
        except ValidationFailed as exc:
            log.warning("welcome card left untracked tenant=%s message=%s: %s", tenant,
                        message.id, exc)
            return attachments
