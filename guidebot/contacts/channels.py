"""Channel codes: 「联系我」 QR codes, or 获客助手 acquisition links, whose compact state names
guide, store and campaign."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from urllib.parse import urlencode

from guidebot.contacts import accept_hours, state_codec
from guidebot.contacts.tags import TagService
from guidebot.content.library import Library
from guidebot.db.engine import Database
from guidebot.db.models import ChannelCode
from guidebot.db.repo import channels as repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import sop_tasks as job_state
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, ValidationFailed, WeComError
from guidebot.wecom.client import WeComClient

KINDS = ("qr", "link")  # 「联系我」 QR code, 获客助手 link


MAX_GUIDES = 100  # guides of one code (the sandbox and WeCom's 多人 codes take many more)
MAX_BACKUP = 20
MAX_DAILY_LIMIT = 10_000


@dataclass(frozen=True)
class _New:
    """Which rows a create added (removed again when WeCom refuses)."""

    guides: tuple[str, ...]
    store: bool


def members_of(guide: str, guides: Sequence[str], backup: Sequence[str], daily_limit: int,
               kind: str) -> list[str]:
    """The code's guides in order (`guide` alone, or `guides`), after checking the rotation:
    a daily limit needs a backup guide to take over when every guide reached it (WeCom's code
    must name someone), and is kept for QR codes (update_contact_way: the rotation is not
    built on a link's update_link, whose body is assumed)."""
    if bool(guide) == bool(guides):
        raise ValidationFailed("guides: give guide or guides (not both)", code="channel_guides")
    chosen = list(guides) if guides else [guide]
    if (len(set(chosen)) != len(chosen) or len(set(backup)) != len(backup)
            or set(chosen) & set(backup)):
        raise ValidationFailed("guides: guides and backup_guides must not repeat a guide",
                               code="channel_guides_repeat")
    if len(chosen) > MAX_GUIDES or len(backup) > MAX_BACKUP:
        raise ValidationFailed(f"guides: at most {MAX_GUIDES} guides and {MAX_BACKUP} "
                               "backup guides", code="channel_guides_many")
    if not 0 <= daily_limit <= MAX_DAILY_LIMIT:
        raise ValidationFailed(f"daily_limit: must be 0 (none) to {MAX_DAILY_LIMIT}",
                               code="channel_limit")
    if daily_limit and not backup:
        raise ValidationFailed("backup_guides: a daily_limit needs them: someone must take the "
                               "customers once every guide reached it",
                               code="channel_limit_backup")
    if backup and not daily_limit:
        raise ValidationFailed("backup_guides: they serve only with a daily_limit",
                               code="channel_backup_unused")
    if daily_limit and kind != "qr":
        raise ValidationFailed("daily_limit: is for QR codes (kind qr)",
                               code="channel_limit_link")
    return chosen


def code_turn(db: Database, tenant: str, code_id: int) -> AbstractAsyncContextManager[None]:
    """The code's turn (sop_tasks.turn: every process's tasks, one at a time): whoever
    asks WeCom to change the code's body and stores what it asked takes it (HQ's edit, the
    daily-limit rotation, 自动通过好友's window edges, and the outbox's retries of theirs),
    so what the database holds of the body is what WeCom was last told."""
    return job_state.turn(db.engine, f"channel-code:{tenant}:{code_id}")


def _always(tenant: str, code: ChannelCode) -> bool:
    return code.skip_verify


async def _nothing(tenant: str, code_id: int) -> bool:
    return False


class ChannelService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient], tags: TagService,
                 library: Library, *,
                 verify: Callable[[str, ChannelCode], bool] = _always,
                 recheck: Callable[[str, int], Awaitable[bool]] = _nothing) -> None:
        """`verify`: skip_verify as WeCom should hold it now for a code (自动通过好友's
        window, ChannelAutoAccept.wanted); `recheck`: the daily-limit rotation's decision
        on an edited code, in the turn the edit holds (ChannelRotation.recheck_held)."""
        self._db = db
        self._client_for = client_for
        self._tags = tags
        self._library = library
        self._verify = verify
        self._recheck = recheck

    async def create(self, tenant: str, *, guide: str = "", store: str | None = None,
                     campaign: str = "", tags: Sequence[str] = (),
                     welcome_message: str = "", kind: str = "qr", guides: Sequence[str] = (),
                     backup_guides: Sequence[str] = (), daily_limit: int = 0,
                     skip_verify: bool = True, auto_accept_hours: str = "") -> ChannelCode:
        """A channel code for a guide, or for several (多人活码: WeCom gives each add to one
        of them): a 「联系我」 QR code (`qr`), or a 获客助手 link (`link`) whose url carries the
        code's state as `customer_channel` (FACTS-next §F), so an add through either is
        attributed the same way. A QR code may limit each guide's adds a day
        (`daily_limit`, the backup guides serving once all reached it: ChannelRotation).
        自动通过好友: `skip_verify`, only inside `auto_accept_hours` when given (the code is
        made with what the window wants now; ChannelAutoAccept keeps it so)."""
        if kind not in KINDS:
            raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}",
                                   code="channel_kind")
        chosen = members_of(guide, guides, backup_guides, daily_limit, kind)
        accept_hours.check(skip_verify, auto_accept_hours)
        if welcome_message and welcome_message not in self._library.messages:
            raise ValidationFailed(f"unknown message {welcome_message!r} in content_library",
                                   code="channel_welcome", name=welcome_message)
        if len(campaign) > 64:
            raise ValidationFailed("campaign must be at most 64 characters",
                                   code="channel_campaign")
        await self._tags.resolve(tenant, list(tags))
        everyone = [*chosen, *backup_guides]
        async with self._db.write() as s:
            added: list[str] = []
            for userid in everyone:
                known = await contacts_repo.get_guide(s, tenant=tenant, userid=userid)
                if known is not None and not known.active:
                    # The address book says this member left or was disabled: a code for
                    # them would bring customers to nobody.
                    raise ValidationFailed(f"guide: {userid} is no longer an active member "
                                           f"(WeCom status {known.wecom_status})",
                                           code="channel_guide_left", guide=userid)
                if known is None:
                    added.append(userid)
            new = _New(
                guides=tuple(added),
                store=bool(store) and await contacts_repo.get_store(
                    s, tenant=tenant, store_id=store or "") is None)
            # The guides' store is set once WeCom accepted the code (a refusal changes nothing).
            for userid in everyone:
                await contacts_repo.ensure_guide(s, tenant=tenant, userid=userid)
            if store:
                await contacts_repo.ensure_store(s, tenant=tenant, store_id=store)
            row = ChannelCode(
                tenant=tenant, guide=chosen[0], store_id=store, campaign=campaign, kind=kind,
                tags=json.dumps(list(tags), ensure_ascii=False),
                welcome_message=welcome_message,
                guides=json.dumps(chosen if len(chosen) > 1 or backup_guides else [],
                                  ensure_ascii=False),
                backup_guides=json.dumps(list(backup_guides), ensure_ascii=False),
                daily_limit=daily_limit, skip_verify=skip_verify,
                auto_accept_hours=auto_accept_hours)
            row.skip_verify_now = self._verify(tenant, row)  # what the window wants now
            code = await repo.create(s, code=row)
        assert code.id is not None
        return await self._register(tenant, code, new)

    async def edit(self, tenant: str, code_id: int, change: Edit) -> ChannelCode:
        """A code's guides, limit, store, campaign, tags, welcome or 自动通过好友 changed.
        New members (or a new remark, the link's name, or another skip_verify than WeCom
        holds) are asked of WeCom first (update_contact_way, or a link's update_link, whose
        body past link_id is assumed: WeComClient's update_acquisition_link); a refusal
        stores nothing. A type 1 code stays one guide. All of it (the code read, WeCom
        asked, the edit's columns saved, the rotation's recheck) in the code's turn, so a
        job's change meanwhile is neither overwritten nor sent before the edit's."""
        async with code_turn(self._db, tenant, code_id):
            code = await self._edit_held(tenant, code_id, change)
            await self._recheck(tenant, code_id)
        return code

    async def _edit_held(self, tenant: str, code_id: int, change: Edit) -> ChannelCode:
        code = await self.get(tenant, code_id)
        if code.deleted_at is not None:
            raise NotFound(f"code_id: no channel code {code_id}", code="channel_unknown",
                           code_id=code_id)
        guides = list(change.guides) if change.guides is not None else code.guide_list()
        backup = (list(change.backup_guides) if change.backup_guides is not None
                  else code.backup_list())
        limit = change.daily_limit if change.daily_limit is not None else code.daily_limit
        members_of("", guides, backup, limit, code.kind)
        members_change = (guides, backup) != (code.guide_list(), code.backup_list())
        if code.single and (len(guides) > 1 or backup):
            raise ValidationFailed("guides: this code was made for one guide (a type 1 "
                                   "contact way, which WeCom keeps to one member); make a new "
                                   "code for several guides", code="channel_single")
        await self._check_inputs(tenant, change)
        if change.campaign is not None and len(change.campaign) > 64:
            raise ValidationFailed("campaign: at most 64 characters", code="channel_campaign")
        async with self._db.read() as s:
            left = await repo.inactive_among(s, tenant=tenant, userids=[*guides, *backup])
        gone = next((u for u in (*guides, *backup) if u in left), None)
        if gone is not None:
            raise ValidationFailed(f"guides: {gone} is no longer an active member",
                                   code="channel_guide_left", guide=gone)
        before_remark = remark_of(code)
        code.guide, code.daily_limit = guides[0], limit
        code.guides = json.dumps(guides if not code.single else [], ensure_ascii=False)
        code.backup_guides = json.dumps(backup, ensure_ascii=False)
        if change.store is not None:
            code.store_id = change.store or None
        if change.campaign is not None:
            code.campaign = change.campaign
        if change.tags is not None:
            code.tags = json.dumps(list(change.tags), ensure_ascii=False)
        if change.welcome_message is not None:
            code.welcome_message = change.welcome_message
        if change.skip_verify is not None:
            code.skip_verify = change.skip_verify
        if change.auto_accept_hours is not None:
            code.auto_accept_hours = change.auto_accept_hours
        accept_hours.check(code.skip_verify, code.auto_accept_hours)
        wanted = self._verify(tenant, code)
        told = (members_change or remark_of(code) != before_remark
                or wanted != code.skip_verify_now)
        if told:
            code.skip_verify_now = wanted
            code.serving, code.serving_day = "[]", ""  # every guide: the rotation decides again
            await self._ask_change(tenant, code, guides)
        async with self._db.write() as s:
            for userid in [*guides, *backup]:
                await contacts_repo.ensure_guide(s, tenant=tenant, userid=userid)
            if code.store_id:
                await contacts_repo.ensure_store(s, tenant=tenant, store_id=code.store_id)
            await repo.save_edit(s, code=code, told=told)
        return code

    async def _ask_change(self, tenant: str, code: ChannelCode, guides: list[str]) -> None:
        """WeCom told the code's members, remark and skip_verify: a QR code's contact way,
        or a link's members and name (WeComError when it refuses)."""
        client = self._client_for(tenant)
        if code.kind == "link":
            await client.update_acquisition_link(link_id=code.config_id,
                                                 name=remark_of(code), users=guides,
                                                 skip_verify=code.skip_verify_now)
        else:
            await client.update_contact_way(config_id=code.config_id, users=guides,
                                            state=code.state, remark=remark_of(code),
                                            skip_verify=code.skip_verify_now)

    async def get(self, tenant: str, code_id: int) -> ChannelCode:
        async with self._db.read() as s:
            code = await repo.get(s, tenant=tenant, code_id=code_id)
        if code is None:
            raise NotFound(f"code_id: no channel code {code_id}", code="channel_unknown",
                           code_id=code_id)
        return code

    async def delete(self, tenant: str, code_id: int) -> ChannelCode:
        """The code deleted in WeCom (del_contact_way / delete_link) and marked deleted: it
        stays listed with the customers it brought. Deleting it again changes nothing."""
        code = await self.get(tenant, code_id)
        if code.deleted_at is not None:
            return code
        client = self._client_for(tenant)
        if code.kind == "link":
            await client.delete_acquisition_link(link_id=code.config_id)
        else:
            await client.del_contact_way(config_id=code.config_id)
        code.deleted_at = utcnow()
        async with self._db.write() as s:
            await repo.mark_deleted(s, code_id=code.id or 0, at=code.deleted_at)
        return code

    async def _check_inputs(self, tenant: str, change: Edit) -> None:
        if change.welcome_message and change.welcome_message not in self._library.messages:
            raise ValidationFailed(f"unknown message {change.welcome_message!r} in "
                                   "content_library", code="channel_welcome",
                                   name=change.welcome_message)
        if change.tags:
            await self._tags.resolve(tenant, list(change.tags))

    async def _ask(self, tenant: str, code: ChannelCode, state: str) -> tuple[str, str]:
        """WeCom's id of the code and what is shared: the QR image, or the link's url with
        `customer_channel` (its State on the add, ≤ 64 bytes: ours is ≤ 30)."""
        client = self._client_for(tenant)
        name = remark_of(code)
        users = code.guide_list()
        if code.kind == "link":
            link = (await client.create_acquisition_link(
                name=name, users=users, skip_verify=code.skip_verify_now))["link"]
            url = str(link.get("url", ""))
            joiner = "&" if "?" in url else "?"
            shared = f"{url}{joiner}{urlencode({'customer_channel': state})}"
            return str(link.get("link_id", "")), shared
        # type 2 (多人) when the members may change: a type 1 code names exactly one member
        several = len(users) > 1 or bool(code.backup_list())
        response = await client.add_contact_way(users=users, state=state, remark=name,
                                                type_=2 if several else 1,
                                                skip_verify=code.skip_verify_now)
        return str(response.get("config_id", "")), str(response.get("qr_code", ""))

    async def _register(self, tenant: str, code: ChannelCode, new: _New) -> ChannelCode:
        assert code.id is not None
        state = state_codec.encode(code.id)
        try:
            config_id, shared = await self._ask(tenant, code, state)
        except WeComError:
            # WeCom refused: no half-created rows (the code, and guides or a store this
            # create added) stay behind.
            async with self._db.write() as s:
                await repo.delete_unfinished(s, code_id=code.id)
                for userid in new.guides:
                    await contacts_repo.delete_guide(s, tenant=tenant, userid=userid)
                if new.store and code.store_id:
                    await contacts_repo.delete_store(s, tenant=tenant, store_id=code.store_id)
            raise
        code.state, code.config_id, code.qr_code = state, config_id, shared
        async with self._db.write() as s:
            await repo.set_wecom_fields(s, code_id=code.id, state=state,
                                        config_id=code.config_id, qr_code=code.qr_code)
            if code.store_id:
                for userid in code.guide_list():  # a backup guide keeps their own store
                    await contacts_repo.ensure_guide(s, tenant=tenant, userid=userid,
                                                     store_id=code.store_id)
        return code


@dataclass(frozen=True)
class Edit:
    """What HQ changes in a code (None: unchanged). Its kind and state never change: the
    printed QR code or shared link keeps working (换人不换码)."""

    guides: tuple[str, ...] | None = None
    backup_guides: tuple[str, ...] | None = None
    daily_limit: int | None = None
    store: str | None = None  # "" clears it
    campaign: str | None = None
    tags: tuple[str, ...] | None = None
    welcome_message: str | None = None
    skip_verify: bool | None = None
    auto_accept_hours: str | None = None  # "" clears it


def remark_of(code: ChannelCode) -> str:
    """The contact way's remark (≤ 30 characters, FACTS §3.4): the campaign, or guidebot."""
    return (code.campaign or "guidebot")[:30]
