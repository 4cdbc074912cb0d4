"""群活码 (group join codes): a QR code HQ makes for 1–5 of the tenant's live customer groups
(WeCom's 客户群「加入群聊」管理, groupchat/add_join_way), so a poster or a store counter brings
customers into them; each join through it carries the code's compact state ("gj…",
state_codec), so the joins are counted under the code (its store and campaign).

NOT confirmed (not in FACTS; from public third-party summaries of WeCom's doc): the four
join_way APIs and their bodies, that add_join_way answers only config_id (the QR code is read
with get_join_way), that state and remark hold ≤ 30 characters, that room_base_name and
room_base_id matter only with auto_create_room 1, and that groupchat/get lists a member's
`state` when they joined through a way that has one (guidebot/contacts/groups.py reads it)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from guidebot.contacts import state_codec
from guidebot.contacts.views import iso
from guidebot.db.engine import Database
from guidebot.db.models_groups import GroupJoinCode
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import group_codes as repo
from guidebot.db.repo import groups as groups_repo
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, ValidationFailed, WeComError
from guidebot.settings import TenantSettings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

MAX_GROUPS = 5  # chat_id_list: 1–5 groups (assumed)
MAX_REMARK = 30  # remark ≤ 30 characters (assumed); the campaign is the remark
MAX_ROOM_NAME = 40  # our bound on room_base_name (WeCom's is not known)
SCENE_QR = 2  # scene 2 二维码插件 (1 小程序插件 is not offered)
SHOWN_JOINS = 50  # joins a code lists on the page (all are counted)


@dataclass(frozen=True)
class Settings:
    """What a code is made of (Edit: None leaves a field as it is)."""

    chat_ids: tuple[str, ...]
    campaign: str = ""
    store: str | None = None
    auto_create_room: bool = False
    room_base_name: str = ""
    room_base_id: int = 0


@dataclass(frozen=True)
class Edit:
    chat_ids: tuple[str, ...] | None = None
    campaign: str | None = None
    store: str | None = None  # "" clears it
    auto_create_room: bool | None = None
    room_base_name: str | None = None
    room_base_id: int | None = None


class GroupCodeService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient]) -> None:
        self._db, self._client_for = db, client_for

    async def create(self, tenant: str, wanted: Settings) -> GroupJoinCode:
        """A code for the groups, made in WeCom (add_join_way, then get_join_way for its QR
        code); a refusal (WeComError) leaves nothing stored."""
        await self._check(tenant, wanted)
        async with self._db.write() as s:
            code = await repo.create(s, code=GroupJoinCode(
                tenant=tenant, campaign=wanted.campaign, store_id=wanted.store or None,
                chat_ids=json.dumps(list(wanted.chat_ids)),
                auto_create_room=wanted.auto_create_room,
                room_base_name=wanted.room_base_name, room_base_id=wanted.room_base_id))
        assert code.id is not None
        code.state = state_codec.encode(code.id, prefix=state_codec.GROUP_PREFIX)
        client = self._client_for(tenant)
        try:
            code.config_id = str((await client.add_join_way(_body(code)))["config_id"])
            way = (await client.get_join_way(code.config_id)).get("join_way") or {}
        except WeComError:
            if code.config_id:  # made but not readable: undone, so nothing is left behind
                await self._undo(client, code.config_id)
            async with self._db.write() as s:
                await repo.delete_unfinished(s, code_id=code.id)
            raise
        code.qr_code = str(way.get("qr_code") or "")[:512]
        async with self._db.write() as s:
            await repo.save(s, code=code)
            if code.store_id:
                await contacts_repo.ensure_store(s, tenant=tenant, store_id=code.store_id)
        log.info("group code made tenant=%s code=%s groups=%d", tenant, code.id,
                 len(wanted.chat_ids))
        return code

    async def _undo(self, client: WeComClient, config_id: str) -> None:
        try:
            await client.del_join_way(config_id)
        except WeComError as exc:
            log.warning("group code undo failed config=%s errcode=%s", config_id, exc.errcode)

    async def get(self, tenant: str, code_id: int) -> GroupJoinCode:
        async with self._db.read() as s:
            code = await repo.get(s, tenant=tenant, code_id=code_id)
        if code is None:
            raise NotFound(f"code_id: no group code {code_id}", code="group_code_unknown",
                           code_id=code_id)
        return code

    async def edit(self, tenant: str, code_id: int, change: Edit) -> GroupJoinCode:
        """Its groups, campaign, store or auto-created rooms changed: asked of WeCom first
        (update_join_way with every field; the QR code and state stay), a refusal changes
        nothing. A deleted code cannot change."""
        code = await self.get(tenant, code_id)
        if code.deleted_at is not None:
            raise NotFound(f"code_id: group code {code_id} was deleted",
                           code="group_code_unknown", code_id=code_id)
        now = Settings(
            chat_ids=(tuple(change.chat_ids) if change.chat_ids is not None
                      else tuple(code.chat_list())),
            campaign=change.campaign if change.campaign is not None else code.campaign,
            store=(change.store if change.store is not None else code.store_id) or None,
            auto_create_room=(change.auto_create_room if change.auto_create_room is not None
                              else code.auto_create_room),
            room_base_name=(change.room_base_name if change.room_base_name is not None
                            else code.room_base_name),
            room_base_id=(change.room_base_id if change.room_base_id is not None
                          else code.room_base_id))
        await self._check(tenant, now)
        code.chat_ids, code.campaign, code.store_id = (json.dumps(list(now.chat_ids)),
                                                       now.campaign, now.store)
        code.auto_create_room, code.room_base_name = now.auto_create_room, now.room_base_name
        code.room_base_id = now.room_base_id
        await self._client_for(tenant).update_join_way(
            {"config_id": code.config_id, **_body(code)})
        async with self._db.write() as s:
            await repo.save(s, code=code)
            if code.store_id:
                await contacts_repo.ensure_store(s, tenant=tenant, store_id=code.store_id)
        return code

    async def delete(self, tenant: str, code_id: int) -> GroupJoinCode:
        """Deleted in WeCom (del_join_way) and marked deleted: it stays listed with the joins
        it brought. Deleting it again changes nothing."""
        code = await self.get(tenant, code_id)
        if code.deleted_at is not None:
            return code
        await self._client_for(tenant).del_join_way(code.config_id)
        code.deleted_at = utcnow()
        async with self._db.write() as s:
            await repo.save(s, code=code)
        return code

    async def _check(self, tenant: str, wanted: Settings) -> None:
        chats = list(wanted.chat_ids)
        if not 1 <= len(chats) <= MAX_GROUPS or len(set(chats)) != len(chats):
            raise ValidationFailed(f"chat_ids: give 1 to {MAX_GROUPS} groups, none twice",
                                   code="group_code_groups")
        async with self._db.read() as s:
            live = await groups_repo.live_ids(s, tenant=tenant)
        unknown = next((c for c in chats if c not in live), None)
        if unknown is not None:
            raise ValidationFailed(f"chat_ids: {unknown} is not a live customer group of this "
                                   "tenant", code="group_code_group_unknown", chat_id=unknown)
        if len(wanted.campaign) > MAX_REMARK:
            raise ValidationFailed(f"campaign: at most {MAX_REMARK} characters",
                                   code="group_code_campaign")
        if wanted.store is not None and len(wanted.store) > 64:
            raise ValidationFailed("store: at most 64 characters", code="group_code_store")
        if wanted.auto_create_room and not 0 < len(wanted.room_base_name) <= MAX_ROOM_NAME:
            raise ValidationFailed(f"room_base_name: auto_create_room needs a name of 1 to "
                                   f"{MAX_ROOM_NAME} characters", code="group_code_room")
        if not 0 <= wanted.room_base_id < 2**31:
            raise ValidationFailed("room_base_id: must not be negative",
                                   code="group_code_room")

    async def codes(self, tenant: str) -> list[GroupJoinCode]:
        async with self._db.read() as s:
            return list(await repo.list_for_tenant(s, tenant=tenant))

    async def list_view(self, tenant: TenantSettings, *, day_from: date,
                        day_to: date) -> dict[str, Any]:
        """The codes, newest first, each with its customers' joins through it on those days
        (the tenant's): how many, and the latest SHOWN_JOINS."""
        start, end = tenant.day_bounds(day_from, day_to)
        async with self._db.read() as s:
            codes = await repo.list_for_tenant(s, tenant=tenant.id)
            joins = await repo.joins(s, tenant=tenant.id, states=[c.state for c in codes],
                                     start=start, end=end)
            names = await groups_repo.names(s, tenant=tenant.id, chat_ids=sorted(
                {c for code in codes for c in code.chat_list()} | {j.chat_id for j in joins}))
        by_state: dict[str, list[repo.Join]] = {}
        for join in joins:
            by_state.setdefault(join.state, []).append(join)
        return {"from": day_from.isoformat(), "to": day_to.isoformat(), "codes": [
            {**code_json(code, names), "joined": len(by_state.get(code.state, [])),
             "joins": [{"external_userid": j.external_userid, "chat_id": j.chat_id,
                        "group_name": names.get(j.chat_id, ""), "at": iso(j.at)}
                       for j in by_state.get(code.state, [])[:SHOWN_JOINS]]}
            for code in codes]}

    async def view(self, tenant: str, code: GroupJoinCode) -> dict[str, Any]:
        async with self._db.read() as s:
            names = await groups_repo.names(s, tenant=tenant, chat_ids=code.chat_list())
        return code_json(code, names)


def _body(code: GroupJoinCode) -> dict[str, Any]:
    """add_join_way's body (assumed, see the module): scene 2 (QR), the campaign as remark
    (or "guidebot"), the groups and state; the room fields only with auto_create_room."""
    body: dict[str, Any] = {"scene": SCENE_QR, "remark": (code.campaign or "guidebot")[:30],
                            "auto_create_room": int(code.auto_create_room),
                            "chat_id_list": code.chat_list(), "state": code.state}
    if code.auto_create_room:
        body |= {"room_base_name": code.room_base_name, "room_base_id": code.room_base_id}
    return body


def code_json(code: GroupJoinCode, names: dict[str, str] | None = None) -> dict[str, Any]:
    names = names or {}
    return {"id": code.id, "state": code.state, "config_id": code.config_id,
            "qr_code": code.qr_code, "campaign": code.campaign, "store": code.store_id,
            "groups": [{"chat_id": c, "name": names.get(c, "")} for c in code.chat_list()],
            "auto_create_room": code.auto_create_room,
            "room_base_name": code.room_base_name, "room_base_id": code.room_base_id,
            "created_at": iso(code.created_at), "deleted_at": iso(code.deleted_at)}


def tuple_or_none(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None
