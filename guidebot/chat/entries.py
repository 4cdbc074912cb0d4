"""kf links per guide and customers entering a session through them.

`POST /api/v1/{t}/kf/links` makes a 微信客服 link with `kf/add_contact_way` (a `scene`) and
appends `scene_param=<token>`, the token of a tracked link of the guide (commerce_links,
campaign "kf:<open_kfid>"). WeCom hands the scene_param back verbatim in `enter_session`
(FACTS-next §A.3, §A.7): the entry is recorded as the guide's touch (kind "kf_enter", like a
tracked card's visit) and, when the event carries a welcome_code, answered with
content_library/messages/kf_welcome.toml through kf/send_msg_on_event within its 20 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from guidebot.chat.customers import Writer
from guidebot.commerce.links import new_token
from guidebot.content.library import Library
from guidebot.content.render import render
from guidebot.db.engine import Database
from guidebot.db.models_commerce import Touch, TrackedLink
from guidebot.db.repo import commerce_links as links_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.outbox import Outbox
from guidebot.settings import Settings
from guidebot.wecom.kf import KfApi

log = logging.getLogger(__name__)

WELCOME = "kf_welcome"
WELCOME_WINDOW = timedelta(seconds=20)  # send_msg_on_event with a welcome_code (FACTS-next §A.5)
SCENE = "guide"  # kf/add_contact_way scene (≤ 32 of [0-9a-zA-Z_-]); the token rides in scene_param
CAMPAIGN = "kf:"
TOUCH_KIND = "kf_enter"


@dataclass(frozen=True)
class Entered:
    guide: str | None
    welcomed: bool
    reason: str


class KfEntries:
    def __init__(self, settings: Settings, db: Database, library: Library, outbox: Outbox,
                 api_for: Callable[[str], KfApi],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._db = db
        self.library = library
        self._outbox = outbox
        self._api_for = api_for
        self._clock = clock

    async def execute(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "kf_welcome"."""
        return await self._api_for(tenant).send_msg_on_event(payload)

    async def create_link(self, tenant: str, guide: str, open_kfid: str) -> dict[str, Any]:
        if open_kfid not in self._settings.tenant(tenant).kf.open_kfids:
            raise ValidationFailed(f"open_kfid: {open_kfid!r} is not in [tenants.{tenant}.kf]")
        url = await self._api_for(tenant).add_contact_way(open_kfid=open_kfid, scene=SCENE)
        token = new_token()
        async with self._db.write() as s:
            await contacts_repo.ensure_guide(s, tenant=tenant, userid=guide)
            await links_repo.add_link(s, link=TrackedLink(
                tenant=tenant, token=token, guide=guide, page="",
                campaign=(CAMPAIGN + open_kfid)[:64]))
        joiner = "&" if "?" in url else "?"
        return {"url": f"{url}{joiner}scene_param={quote(token, safe='')}", "token": token,
                "guide": guide, "open_kfid": open_kfid}

    async def entered(self, tenant: str, open_kfid: str, writer: Writer,
                      event: dict[str, Any], at: datetime) -> Entered:
        guide = await self._touch(tenant, open_kfid, writer, str(event.get("scene_param", "")),
                                  at)
        code = str(event.get("welcome_code") or "")
        if not code:
            return Entered(guide, False, "entered; no welcome_code (welcomed in the last 48 h "
                                         "or a welcome configured in WeCom)")
        if WELCOME not in self.library.messages:
            return Entered(guide, False, f"entered; no message {WELCOME}")
        text = await self._welcome_text(tenant, guide, writer)
        deadline = at + WELCOME_WINDOW
        body = {"code": code, "msgid": "gbw" + hashlib.sha256(code.encode()).hexdigest()[:29],
                "msgtype": "text", "text": {"content": text}}
        outcome = await self._outbox.run(tenant=tenant, key=f"kf_welcome:{code}"[:160],
                                         kind="kf_welcome", payload=body, call=self.execute,
                                         deadline=deadline,
                                         until_deadline=True)
        if outcome.status == "done":
            return Entered(guide, True, "entered; welcomed")
        return Entered(guide, False, f"entered; welcome {outcome.status}")

    async def _touch(self, tenant: str, open_kfid: str, writer: Writer, scene_param: str,
                     at: datetime) -> str | None:
        """The guide whose kf link the customer came through; their touch is recorded once
        per entry event (the message is handled once)."""
        if not scene_param:
            return None
        async with self._db.write() as s:
            link = await links_repo.get_link(s, tenant=tenant, token=scene_param[:32])
            if link is None or link.campaign != (CAMPAIGN + open_kfid)[:64]:
                log.info("kf entry tenant=%s: scene_param names no kf link", tenant)
                return None
            # The contact's external_userid when matched, else the kf one (whether they are
            # the same id is unconfirmed); the unionid lets an order match it either way.
            await links_repo.add_touch(s, touch=Touch(
                tenant=tenant, external_userid=writer.context.external_userid,
                unionid=writer.unionid, guide=link.guide, token=link.token, kind=TOUCH_KIND,
                at=at))
        return link.guide

    async def _welcome_text(self, tenant: str, guide: str | None, writer: Writer) -> str:
        names = ("", "")
        if guide:
            async with self._db.read() as s:
                names = (await contacts_repo.guide_names(s, tenant=tenant,
                                                         userids=[guide]))[guide]
        values = {"customer": {"name": writer.context.name},
                  "guide": {"name": names[0], "userid": guide or ""},
                  "store": {"name": names[1]}}
        return render(self.library.messages[WELCOME].text, values)


def event_of(stored: str) -> dict[str, Any]:
    """The `event` object of an event item, as intake stored it."""
    data = json.loads(stored or "{}")
    return data if isinstance(data, dict) else {}
