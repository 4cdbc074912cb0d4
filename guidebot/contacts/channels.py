"""Channel codes: 「联系我」 QR codes, or 获客助手 acquisition links, whose compact state names
guide, store and campaign."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from guidebot.contacts import state_codec
from guidebot.contacts.tags import TagService
from guidebot.content.library import Library
from guidebot.db.engine import Database
from guidebot.db.models import ChannelCode
from guidebot.db.repo import channels as repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.errors import ValidationFailed, WeComError
from guidebot.wecom.client import WeComClient

KINDS = ("qr", "link")  # 「联系我」 QR code, 获客助手 link


@dataclass(frozen=True)
class _New:
    """Which rows a create added (removed again when WeCom refuses)."""

    guide: bool
    store: bool


class ChannelService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient], tags: TagService,
                 library: Library) -> None:
        self._db = db
        self._client_for = client_for
        self._tags = tags
        self._library = library

    async def create(self, tenant: str, *, guide: str, store: str | None = None,
                     campaign: str = "", tags: Sequence[str] = (),
                     welcome_message: str = "", kind: str = "qr") -> ChannelCode:
        """A channel code for the guide: a 「联系我」 QR code (`qr`), or a 获客助手 link
        (`link`) whose url carries the code's state as `customer_channel` (FACTS-next §F),
        so an add through either is attributed the same way."""
        if kind not in KINDS:
            raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}",
                                   code="channel_kind")
        if welcome_message and welcome_message not in self._library.messages:
            raise ValidationFailed(f"unknown message {welcome_message!r} in content_library",
                                   code="channel_welcome", name=welcome_message)
        if len(campaign) > 64:
            raise ValidationFailed("campaign must be at most 64 characters",
                                   code="channel_campaign")
        await self._tags.resolve(tenant, list(tags))
        async with self._db.write() as s:
            known = await contacts_repo.get_guide(s, tenant=tenant, userid=guide)
            if known is not None and not known.active:
                # The address book says this member left or was disabled: a code for them
                # would bring customers to nobody.
                raise ValidationFailed(f"guide: {guide} is no longer an active member "
                                       f"(WeCom status {known.wecom_status})",
                                       code="channel_guide_left", guide=guide)
            new = _New(
                guide=known is None,
                store=bool(store) and await contacts_repo.get_store(
                    s, tenant=tenant, store_id=store or "") is None)
            # The guide's store is set once WeCom accepted the code (a refusal changes nothing).
            await contacts_repo.ensure_guide(s, tenant=tenant, userid=guide)
            if store:
                await contacts_repo.ensure_store(s, tenant=tenant, store_id=store)
            code = await repo.create(s, code=ChannelCode(
                tenant=tenant, guide=guide, store_id=store, campaign=campaign, kind=kind,
                tags=json.dumps(list(tags), ensure_ascii=False),
                welcome_message=welcome_message))
        assert code.id is not None
        return await self._register(tenant, code, new)

    async def _ask(self, tenant: str, code: ChannelCode, state: str) -> tuple[str, str]:
        """WeCom's id of the code and what is shared: the QR image, or the link's url with
        `customer_channel` (its State on the add, ≤ 64 bytes: ours is ≤ 30)."""
        client = self._client_for(tenant)
        name = (code.campaign or "guidebot")[:30]
        if code.kind == "link":
            link = (await client.create_acquisition_link(name=name, users=[code.guide]))["link"]
            url = str(link.get("url", ""))
            joiner = "&" if "?" in url else "?"
            shared = f"{url}{joiner}{urlencode({'customer_channel': state})}"
            return str(link.get("link_id", "")), shared
        response = await client.add_contact_way(users=[code.guide], state=state, remark=name)
        return str(response.get("config_id", "")), str(response.get("qr_code", ""))

    async def _register(self, tenant: str, code: ChannelCode, new: _New) -> ChannelCode:
        assert code.id is not None
        state = state_codec.encode(code.id)
        try:
            config_id, shared = await self._ask(tenant, code, state)
        except WeComError:
            # WeCom refused: no half-created rows (the code, and a guide or store this
            # create added) stay behind.
            async with self._db.write() as s:
                await repo.delete_unfinished(s, code_id=code.id)
                if new.guide:
                    await contacts_repo.delete_guide(s, tenant=tenant, userid=code.guide)
                if new.store and code.store_id:
                    await contacts_repo.delete_store(s, tenant=tenant, store_id=code.store_id)
            raise
        code.state, code.config_id, code.qr_code = state, config_id, shared
        async with self._db.write() as s:
            await repo.set_wecom_fields(s, code_id=code.id, state=state,
                                        config_id=code.config_id, qr_code=code.qr_code)
            if code.store_id:
                await contacts_repo.ensure_guide(s, tenant=tenant, userid=code.guide,
                                                 store_id=code.store_id)
        return code
