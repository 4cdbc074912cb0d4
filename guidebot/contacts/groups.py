"""Customer groups (客户群): the groups guides own, who is in them, and who joined and left.

WeCom tells guidebot that a group changed (`change_external_chat`: create, update with
add_member / del_member / change_owner / change_name / change_notice, dismiss) but not how:
guidebot reads the group back with `groupchat/get` and stores what it finds. WeCom fills in the
details a moment after the callback (FACTS-next §C.3: "可能需要等一段时间(例如2秒)"), so a read
that does not yet show the members the callback named raises `NotYetUpdated` and the inbox
tries again (1 s, then 2 s later); a group still behind after that is caught up by the daily
sync. The daily sync (`sync_if_due`, or 同步客户群 on the console) reads every group
(`groupchat/list`, then `groupchat/get` each); a group WeCom no longer lists is dismissed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from guidebot import events as ev
from guidebot.contacts.due import run_if_due
from guidebot.contacts.views import iso
from guidebot.db.engine import Database
from guidebot.db.models_groups import CUSTOMER, MEMBER, GroupChat, GroupMember
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import groups as repo
from guidebot.db.repo import sop_tasks as job_state
from guidebot.db.types import utcnow
from guidebot.errors import GuidebotError, NotFound, WeComApiError
from guidebot.settings import TenantSettings
from guidebot.wecom.client import WeComClient, answer_time

log = logging.getLogger(__name__)

SYNC_EVERY = timedelta(days=1)
SYNC_CURSOR = "group-sync"
LIST_PAGE = 1000  # FACTS-next §C.1: limit 1–1000
OWNERS_PER_CALL = 100  # FACTS-next §C.1: owner_filter.userid_list ≤ 100
# A sync reads groups with groupchat/get a few at once (WeCom's per-API frequency limit for
# it is not in FACTS; the client backs off on 45009), stored a chunk per transaction.
READS_IN_FLIGHT = 8
READ_CHUNK = 200
# groupchat/get of a chat that no longer exists: 40050 (chatid不存在) from memory of WeCom's
# error list, not in FACTS (assumed, as the sandbox answers)
NO_SUCH_CHAT = 40050
TOO_MANY_MEMBERS = 81017  # FACTS-next §C.1: no owner filter while the app sees > 1000 members
# groupchat/get join_scene (FACTS-next §C.2): 1 直接邀请, 2 邀请链接, 3 扫群二维码
JOIN_SCENES = (1, 2, 3)


class NotYetUpdated(GuidebotError):
    """groupchat/get does not show yet what the callback said changed: try again later."""


@dataclass(frozen=True)
class SyncResult:
    groups: int
    dismissed: int


def parse_group(answer: dict[str, Any]) -> repo.Group:
    """groupchat/get's `group_chat` as a Group (member types other than 1 and 2 skipped)."""
    chat = answer.get("group_chat") or {}
    members = []
    for item in chat.get("member_list") or []:
        kind = item.get("type")
        member_id = str(item.get("userid") or "")
        if kind not in (MEMBER, CUSTOMER) or not member_id:
            continue
        scene = item.get("join_scene")
        members.append(repo.Member(
            member_id=member_id, kind=int(kind), joined_at=answer_time(item.get("join_time")),
            join_scene=scene if scene in JOIN_SCENES else 0,
            invitor=str((item.get("invitor") or {}).get("userid") or ""),
            # `state`: the 加入群聊 way's state (群活码), assumed from third-party summaries
            # of WeCom's doc, not confirmed; "" when absent
            state=str(item.get("state") or "")[:30]))
    return repo.Group(chat_id=str(chat.get("chat_id") or ""), name=str(chat.get("name") or ""),
                      owner=str(chat.get("owner") or ""),
                      created_at=answer_time(chat.get("create_time")),
                      member_version=str(chat.get("member_version") or "")[:64],
                      members=tuple(members))


class GroupService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient]) -> None:
        self._db, self._client_for = db, client_for
        self._reads = asyncio.Semaphore(READS_IN_FLIGHT)

    async def on_change(self, event: ev.GroupChatChanged) -> repo.Group | None:
        """A group changed: dismissed, or read back and stored (and returned; None when it is
        gone). The members the callback names must show in the read (joined: present; left:
        gone), else NotYetUpdated."""
        if event.change_type == "dismiss":
            async with self._db.write() as s:
                await repo.dismiss(s, tenant=event.tenant, chat_id=event.chat_id,
                                   at=event.created_at)
            log.info("group dismissed tenant=%s chat=%s", event.tenant, event.chat_id)
            return None
        try:
            answer = await self._client_for(event.tenant).get_group_chat(event.chat_id)
        except WeComApiError as exc:
            if exc.errcode != NO_SUCH_CHAT:
                raise
            async with self._db.write() as s:  # dismissed before its older update was read
                await repo.dismiss(s, tenant=event.tenant, chat_id=event.chat_id,
                                   at=event.created_at)
            return None
        group = parse_group(answer)
        present = {m.member_id for m in group.members}
        changed = set(event.members_changed)
        if (event.update_detail == "add_member" and not changed <= present) or (
                event.update_detail == "del_member" and changed & present):
            raise NotYetUpdated(f"group {event.chat_id}: groupchat/get is behind the callback")
        async with self._db.write() as s:
            stored = await repo.store(s, tenant=event.tenant, group=group, status=None,
                                      at=event.created_at)
        log.info("group stored tenant=%s chat=%s change=%s/%s joined=%d left=%d",
                 event.tenant, event.chat_id, event.change_type, event.update_detail,
                 len(stored.joined), len(stored.left))
        return group

    async def refresh(self, tenant: str, chat_id: str) -> None:
        """One group read back from WeCom and stored (after guidebot changed it)."""
        group = parse_group(await self._client_for(tenant).get_group_chat(chat_id))
        async with self._db.write() as s:
            await repo.store(s, tenant=tenant, group=group, status=None, at=utcnow())

    async def live_per_owner(self, tenant: str) -> dict[str, int]:
        """Per guide: the live groups they own (the data centre's group count)."""
        async with self._db.read() as s:
            return await repo.live_per_owner(s, tenant=tenant)

    async def orphaned(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        """Live groups of owners who left, not yet handed over, by owner."""
        async with self._db.read() as s:
            rows = await repo.orphaned(s, tenant=tenant)
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_owner.setdefault(row.owner, []).append(group_json(row))
        return by_owner

    async def sync(self, tenant: str, *, owners: list[str] | None = None) -> SyncResult:
        """Every group WeCom lists, read and stored; live groups it no longer lists are
        dismissed. `owners`: the guides to list by, needed when WeCom answers 81017."""
        client = self._client_for(tenant)
        try:
            listed = await self._list(client, owners or [])
        except WeComApiError as exc:
            if exc.errcode != TOO_MANY_MEMBERS or owners:
                raise
            async with self._db.read() as s:
                owners = [r["guide"].userid for r in await contacts_repo.list_guides(
                    s, tenant=tenant) if r["guide"].active]
            listed = await self._list(client, owners)
        now = utcnow()
        chats = list(listed.items())
        for start in range(0, len(chats), READ_CHUNK):
            chunk = chats[start:start + READ_CHUNK]
            read = await asyncio.gather(*(self._read(client, tenant, chat_id)
                                          for chat_id, _ in chunk))
            async with self._db.write() as s:  # one transaction for the chunk's groups
                for (_, status), group in zip(chunk, read, strict=True):
                    if group is not None:
                        await repo.store(s, tenant=tenant, group=group, status=status, at=now)
        async with self._db.write() as s:
            gone = await repo.live_ids(s, tenant=tenant) - set(listed)
            for chat_id in sorted(gone):
                await repo.dismiss(s, tenant=tenant, chat_id=chat_id, at=now)
            await job_state.set_cursor(s, tenant=tenant, name=SYNC_CURSOR,
                                       value=now.isoformat())
        result = SyncResult(len(listed), len(gone))
        log.info("groups synced tenant=%s %s", tenant, result)
        return result

    async def _read(self, client: WeComClient, tenant: str,
                    chat_id: str) -> repo.Group | None:
        """One group read during a sync (READS_IN_FLIGHT at once); None when WeCom refuses
        it (gone since the list, 40050, or any other code): the next sync tries again."""
        async with self._reads:
            try:
                return parse_group(await client.get_group_chat(chat_id))
            except WeComApiError as exc:
                log.warning("group sync tenant=%s chat=%s errcode=%s", tenant, chat_id,
                            exc.errcode)
                return None

    async def _list(self, client: WeComClient, owners: list[str]) -> dict[str, int]:
        """chat_id → status, every page (per 100 owners when owners are given)."""
        found: dict[str, int] = {}
        batches = ([owners[i:i + OWNERS_PER_CALL] for i in range(0, len(owners),
                                                                  OWNERS_PER_CALL)]
                   if owners else [[]])
        for batch in batches:
            cursor = ""
            while True:
                page = await client.list_group_chats(cursor=cursor, limit=LIST_PAGE,
                                                     owners=batch)
                for item in page.get("group_chat_list") or []:
                    if item.get("chat_id"):
                        found[str(item["chat_id"])] = int(item.get("status") or 0)
                cursor = str(page.get("next_cursor") or "")
                if not cursor:
                    break
        return found

    async def sync_if_due(self, tenant: str, *, now: datetime | None = None
                          ) -> SyncResult | None:
        """The daily sync, once per SYNC_EVERY across processes (one at a time)."""
        return await run_if_due(self._db, tenant, lock="group-sync", cursor=SYNC_CURSOR,
                                every=SYNC_EVERY, now=now or utcnow(), run=self.sync)

    async def list_view(self, tenant: TenantSettings, *, day_from: date, day_to: date,
                        owner: str = "", dismissed: bool = False) -> dict[str, Any]:
        """The groups with their customers' joins and leaves on those days (the tenant's),
        and totals."""
        start, end = tenant.day_bounds(day_from, day_to)
        async with self._db.read() as s:
            rows = await repo.groups(s, tenant=tenant.id, start=start, end=end, owner=owner,
                                     dismissed=dismissed)
            totals = await repo.totals(s, tenant=tenant.id, start=start, end=end)
        return {"totals": totals, "groups": [
            {**group_json(r["group"]), "joined": r["joined"], "left": r["left"]}
            for r in rows]}

    async def totals(self, tenant: TenantSettings, *, day_from: date,
                     day_to: date) -> dict[str, int]:
        """Live groups, distinct customers in them now, and customers' joins and leaves on
        those days (the tenant's; each one, from the change log by its index): the groups
        block of the overview JSON."""
        start, end = tenant.day_bounds(day_from, day_to)
        async with self._db.read() as s:
            return await repo.totals(s, tenant=tenant.id, start=start, end=end)

    async def detail_view(self, tenant: str, chat_id: str) -> dict[str, Any]:
        """A group with everyone who has been in it; NotFound for none of this tenant's."""
        async with self._db.read() as s:
            group = await repo.group(s, tenant=tenant, chat_id=chat_id)
            if group is None:
                raise NotFound(f"chat_id: no group {chat_id}")
            members = await repo.members(s, tenant=tenant, chat_id=chat_id)
        return {**group_json(group), "members": [member_json(m) for m in members]}

    async def of_customer(self, tenant: str, external_userid: str) -> list[dict[str, Any]]:
        """The groups a customer is or was in, with when they joined and left."""
        async with self._db.read() as s:
            rows = await repo.of_member(s, tenant=tenant, member_id=external_userid)
        return [{**group_json(g), "joined_at": iso(m.joined_at), "left_at": iso(m.left_at)}
                for g, m in rows]


def group_json(group: GroupChat) -> dict[str, Any]:
    return {"chat_id": group.chat_id, "name": group.name, "owner": group.owner,
            "status": group.status, "created_at": iso(group.created_at),
            "dismissed_at": iso(group.dismissed_at), "customers": group.customers,
            "staff": group.staff, "synced_at": iso(group.synced_at)}


def member_json(member: GroupMember) -> dict[str, Any]:
    return {"member_id": member.member_id,
            "kind": "customer" if member.kind == CUSTOMER else "member",
            "joined_at": iso(member.joined_at), "join_scene": member.join_scene,
            "join_state": member.join_state or None,
            "invitor": member.invitor or None, "left_at": iso(member.left_at)}
