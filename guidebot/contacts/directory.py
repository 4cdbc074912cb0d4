"""Guides' names, status and stores from WeCom's address book (user/get, departments,
change_contact), at start, on first sight of a guide, on change_contact and daily."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from guidebot import events as ev
from guidebot.contacts.due import run_if_due
from guidebot.content.library import Library
from guidebot.content.stores import MappedStore
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import directory as repo
from guidebot.db.repo import sop_tasks as job_state
from guidebot.db.repo import store_managers as managers_repo
from guidebot.db.types import utcnow
from guidebot.errors import WeComApiError, WeComError
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

NAME_WAIT_S = 3.0  # on an add the welcome waits for the name; WeCom's window is 20 s
FIRST_SIGHT_RETRY_S = 60.0  # a failed first-sight read is not repeated within this
# Not in FACTS §3.12 ([mem], WeCom's global error-code page): 60111 userid not found,
# 60123 invalid department id. Treated as "this member / department does not exist".
USER_NOT_FOUND = 60111
DEPARTMENT_NOT_FOUND = 60123
LEFT = 5  # user/get status 5: 退出企业 (FACTS-next §I)
ROOT_PARENT = 0  # [mem] the corp's root department has parentid 0: it is not a store
SYNC_EVERY = timedelta(days=1)
SYNC_CURSOR = "directory-sync"
DEPARTMENT_STORE = "dept{}"  # a department's store id when stores.toml does not map it


@dataclass(frozen=True)
class Member:
    userid: str
    name: str
    status: int | None
    main_department: int | None

    @classmethod
    def from_api(cls, userid: str, data: dict[str, Any]) -> Member:
        departments = [d for d in data.get("department") or [] if isinstance(d, int)]
        main = data.get("main_department")
        status = data.get("status")
        return cls(userid, str(data.get("name") or "")[:128],
                   status if isinstance(status, int) else None,
                   main if isinstance(main, int) else (departments[0] if departments else None))


@dataclass(frozen=True)
class Department:
    id: int
    name: str
    parentid: int
    leaders: tuple[str, ...] = ()  # department_leader: the store managers (店长)


def _leaders(raw: Any) -> tuple[str, ...]:
    """department/get's `department_leader`. FACTS-next §I shows the key but not its entries;
    taken here as a list of member userids (as WeCom's department/create takes it), and
    anything else in it is ignored."""
    return tuple(sorted({u for u in raw if isinstance(u, str) and u})) \
        if isinstance(raw, list) else ()


class _Departments:
    """department/get, once per department per run."""

    def __init__(self, client: WeComClient) -> None:
        self._client = client
        self._found: dict[int, Department | None] = {}

    async def get(self, department_id: int) -> Department | None:
        if department_id not in self._found:
            self._found[department_id] = await self._fetch(department_id)
        return self._found[department_id]

    async def _fetch(self, department_id: int) -> Department | None:
        try:
            data = (await self._client.get_department(department_id)).get("department") or {}
        except WeComApiError as exc:
            if exc.errcode != DEPARTMENT_NOT_FOUND:
                raise
            return None
        parent = data.get("parentid")
        return Department(department_id, str(data.get("name") or "")[:128],
                          parent if isinstance(parent, int) else -1,
                          _leaders(data.get("department_leader")))


@dataclass(frozen=True)
class SyncResult:
    members: int = 0
    left: int = 0
    failed: int = 0


class DirectoryService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient],
                 library: Library) -> None:
        self._db = db
        self._client_for = client_for
        self._library = library
        # First sight, per process: guides already read need no database read on each add;
        # concurrent adds of a new guide share one user/get; a failed read is not repeated
        # on every add of a burst (the naming job tries again).
        self._settled: set[tuple[str, str]] = set()
        self._reading: dict[tuple[str, str], asyncio.Task[str]] = {}
        self._failed_at: dict[tuple[str, str], float] = {}

    async def ensure_named(self, tenant: str, userid: str) -> None:
        """Read the guide's name from the address book when the guide has none yet and was
        never read (first sight). Never raises for WeCom: a failed or slow read leaves the
        name empty and the event that named the guide goes on (the naming job tries again).
        A guide read once is kept fresh by change_contact and the daily sync instead."""
        key = (tenant, userid)
        if key in self._settled:
            return
        failed_at = self._failed_at.get(key)
        if failed_at is not None and time.monotonic() - failed_at < FIRST_SIGHT_RETRY_S:
            return
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.create_task(self._first_sight(key))
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        await asyncio.shield(reading)

    async def _first_sight(self, key: tuple[str, str]) -> str:
        tenant, userid = key
        async with self._db.read() as s:
            guide = await contacts_repo.get_guide(s, tenant=tenant, userid=userid)
        if guide is not None and (guide.name or guide.directory_at is not None):
            self._settled.add(key)
            return guide.name
        try:
            async with asyncio.timeout(NAME_WAIT_S):
                member = await self.refresh_member(tenant, userid)
        except (WeComError, TimeoutError) as exc:
            log.warning("guide name not read tenant=%s guide=%s (%s %s)", tenant, userid,
                        type(exc).__name__, getattr(exc, "errcode", ""))
            self._failed_at[key] = time.monotonic()
            return ""
        self._settled.add(key)
        self._failed_at.pop(key, None)
        return member.name if member else ""

    async def name_missing(self, tenant: str) -> int:
        """Guides created without a name and never looked up: read them (the naming job).
        One WeCom refuses to tell about (e.g. 60011, outside the app's visible range) is
        left to the daily sync; an outage or rate limit is tried again next time."""
        async with self._db.read() as s:
            userids = await repo.unnamed_guides(s, tenant=tenant)
        named = 0
        for userid in userids:
            try:
                member = await self.refresh_member(tenant, userid)
            except WeComApiError as exc:
                log.warning("guide name refused tenant=%s guide=%s errcode=%s", tenant, userid,
                            exc.errcode)
                async with self._db.write() as s:
                    await repo.mark_read(s, tenant=tenant, userid=userid, at=utcnow())
                continue
            except WeComError as exc:
                log.warning("guide name not read tenant=%s guide=%s errcode=%s", tenant, userid,
                            exc.errcode)
                continue
            named += bool(member and member.name)
        return named

    async def refresh_member(self, tenant: str, userid: str,
                             departments: _Departments | None = None) -> Member | None:
        """user/get → the guide's name, status and store. A member who left (status 5, or
        unknown to WeCom) is marked inactive and kept. Raises WeComError on other errors."""
        client = self._client_for(tenant)
        try:
            member = Member.from_api(userid, await client.get_user(userid))
        except WeComApiError as exc:
            if exc.errcode != USER_NOT_FOUND:
                raise
            await self._left(tenant, userid)
            return None
        store = await self._store(tenant, member, departments or _Departments(client))
        async with self._db.write() as s:
            if store is not None:
                await contacts_repo.ensure_store(s, tenant=tenant, store_id=store.id,
                                                 name=store.name)
            await repo.set_member(s, tenant=tenant, userid=userid, name=member.name,
                                  store_id=store.id if store else None,
                                  wecom_status=member.status, active=member.status != LEFT,
                                  at=utcnow())
        log.info("guide read from the address book tenant=%s guide=%s status=%s store=%s",
                 tenant, userid, member.status, store.id if store else None)
        return member

    async def _store(self, tenant: str, member: Member,
                     departments: _Departments) -> MappedStore | None:
        """stores.toml first (the guide's own entry, then the main department); else the main
        department is the store, named as in WeCom; the root department is no store."""
        mapped = self._library.stores.store_for(member.userid, member.main_department)
        if mapped is not None or member.main_department is None:
            return mapped
        department = await departments.get(member.main_department)
        if department is None or department.parentid == ROOT_PARENT:
            return None
        return MappedStore(DEPARTMENT_STORE.format(department.id), department.name)

    async def _left(self, tenant: str, userid: str, status: int | None = None) -> None:
        async with self._db.write() as s:
            known = await repo.mark_left(s, tenant=tenant, userid=userid, at=utcnow(),
                                         wecom_status=status)
            await managers_repo.drop_leader(s, tenant=tenant, userid=userid)
        log.info("guide left the corp tenant=%s guide=%s known=%s", tenant, userid, known)

    async def on_change(self, event: ev.DirectoryChanged) -> None:
        """change_contact. A WeCom failure raises, so the inbox retries the event."""
        tenant, change = event.tenant, event.change_type
        if change in ("create_user", "update_user") and event.userid:
            userid = event.userid
            if event.new_userid and event.new_userid != event.userid:
                await self._left(tenant, event.userid)  # history stays under the old id
                userid = event.new_userid
            await self.refresh_member(tenant, userid)
        elif change == "delete_user" and event.userid:
            await self._left(tenant, event.userid)
        elif change in ("create_party", "update_party") and event.department_id is not None:
            departments = _Departments(self._client_for(tenant))
            await self._rename_store(tenant, event.department_id, departments)
            await self._record_leaders(tenant, event.department_id, departments)
        elif change == "delete_party" and event.department_id is not None:
            # the store and its history stay; the department leads nothing any more
            async with self._db.write() as s:
                await managers_repo.set_leaders(s, tenant=tenant,
                                                department_id=event.department_id,
                                                store_id=None, userids=[], at=utcnow())
        else:
            log.info("change_contact %s tenant=%s: nothing to do", change, tenant)

    async def _rename_store(self, tenant: str, department_id: int,
                            departments: _Departments) -> None:
        """A department's new name on its store (a store stores.toml maps keeps its name)."""
        if self._library.stores.maps_department(department_id):
            return
        department = await departments.get(department_id)
        if department is None or department.parentid == ROOT_PARENT or not department.name:
            return
        async with self._db.write() as s:
            await repo.rename_store(s, tenant=tenant, store_id=DEPARTMENT_STORE.format(
                department_id), name=department.name)

    async def _record_leaders(self, tenant: str, department_id: int,
                              departments: _Departments,
                              stores: dict[str, str] | None = None) -> None:
        """The department's leaders as the managers of the store it makes: the store
        stores.toml maps it to, else its own department store once guidebot knows one (a
        department no member works in, such as a region, makes none: its leaders are no
        store's managers and department/get is not asked)."""
        mapped = self._library.stores.by_department.get(department_id)
        store_id = mapped.id if mapped else DEPARTMENT_STORE.format(department_id)
        if mapped is None:
            if stores is None:
                async with self._db.read() as s:
                    stores = await repo.store_names(s, tenant=tenant, store_ids=[store_id])
            if store_id not in stores:
                store_id = ""
        department = await departments.get(department_id) if store_id else None
        if department is None or (mapped is None and department.parentid == ROOT_PARENT):
            store_id = ""
        async with self._db.write() as s:
            await managers_repo.set_leaders(
                s, tenant=tenant, department_id=department_id, store_id=store_id or None,
                userids=department.leaders if department else (), at=utcnow())

    async def sync(self, tenant: str, *, known: bool = True) -> SyncResult:
        """Every member of the app's visible range read with user/get (with their stores),
        and with `known` every guide guidebot knows too (a leaver's delete_user may have been
        lost); then department stores renamed as in WeCom."""
        client = self._client_for(tenant)
        department_ids = await self._department_ids(client)
        userids = await self._member_ids(client, department_ids)
        if known:
            async with self._db.read() as s:
                userids |= set(await repo.guide_userids(s, tenant=tenant))
        departments = _Departments(client)
        members = left = failed = 0
        for userid in sorted(userids):
            try:
                member = await self.refresh_member(tenant, userid, departments)
            except WeComError as exc:
                failed += 1
                log.warning("directory sync tenant=%s guide=%s errcode=%s", tenant, userid,
                            exc.errcode)
                continue
            members += member is not None
            left += member is None or member.status == LEFT
        async with self._db.read() as s:
            stores = await repo.store_names(s, tenant=tenant, store_ids=[
                DEPARTMENT_STORE.format(d) for d in department_ids])
        for department_id in department_ids:  # those whose members all left keep up too
            if DEPARTMENT_STORE.format(department_id) in stores:
                await self._rename_store(tenant, department_id, departments)
            try:
                await self._record_leaders(tenant, department_id, departments, stores)
            except WeComError as exc:
                log.warning("department leaders not read tenant=%s department=%s errcode=%s",
                            tenant, department_id, exc.errcode)
        async with self._db.write() as s:
            await managers_repo.keep_departments(s, tenant=tenant,
                                                 department_ids=department_ids)
            await job_state.set_cursor(s, tenant=tenant, name=SYNC_CURSOR,
                                       value=utcnow().isoformat())
        result = SyncResult(members, left, failed)
        log.info("directory synced tenant=%s %s", tenant, result)
        return result

    async def sync_at_start(self, tenant: str) -> SyncResult | None:
        """The members WeCom lists, at start; skipped while another process syncs (several
        processes starting together read the book once)."""
        async with job_state.singleton(self._db.engine, f"directory-sync:{tenant}") as mine:
            return await self.sync(tenant, known=False) if mine else None

    async def sync_if_due(self, tenant: str, *, now: datetime | None = None
                          ) -> SyncResult | None:
        """The daily sync, once per SYNC_EVERY across processes and restarts, in one process
        at a time (PostgreSQL advisory lock). None: not due, or another process syncs."""
        return await run_if_due(self._db, tenant, lock="directory-sync", cursor=SYNC_CURSOR,
                                every=SYNC_EVERY, now=now or utcnow(), run=self.sync)

    async def _department_ids(self, client: WeComClient) -> list[int]:
        listed = (await client.list_departments()).get("department_id") or []
        return sorted({d["id"] for d in listed if isinstance(d, dict)
                       and isinstance(d.get("id"), int)})

    async def _member_ids(self, client: WeComClient, department_ids: list[int]) -> set[str]:
        """user/list_id page by page. Whether a self-built app may call it is unconfirmed, so
        an API error falls back to user/simplelist per department (FACTS-next §I)."""
        found: set[str] = set()
        cursor = ""
        try:
            while True:
                page = await client.list_user_ids(cursor=cursor)
                found.update(str(i["userid"]) for i in page.get("dept_user") or []
                             if isinstance(i, dict) and i.get("userid"))
                cursor = str(page.get("next_cursor") or "")
                if not cursor:
                    return found
        except WeComApiError as exc:
            log.warning("user/list_id refused errcode=%s; listing members per department",
                        exc.errcode)
        for department_id in department_ids:
            listed = (await client.list_users(department_id)).get("userlist") or []
            found.update(str(u["userid"]) for u in listed
                         if isinstance(u, dict) and u.get("userid"))
        return found
