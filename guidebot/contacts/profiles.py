"""Customer profiles from externalcontact/get, with each guide's remark and description of the
customer (follow_user, read over every page WeCom answers); a failed fetch never drops the
link."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.group_commit import GroupCommit
from guidebot.db.repo import contacts as repo
from guidebot.db.types import utcnow
from guidebot.errors import NoRelation, WeComError
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

# (tenant, external_userid, profile fields, fetched at, [(guide, remark, description)])
Stored = tuple[str, str, dict[str, Any], datetime, list[tuple[str, str, str]]]


def profile_fields(response: dict[str, Any]) -> dict[str, Any]:
    contact = response.get("external_contact") or {}
    return {
        "name": str(contact.get("name", ""))[:128],
        "unionid": contact.get("unionid") or None,
        "avatar": str(contact.get("avatar", ""))[:512],
        "corp_name": str(contact.get("corp_name", ""))[:128],
        "contact_type": contact.get("type"),
        "gender": contact.get("gender"),
    }


def remarks_of(follows: Any) -> list[tuple[str, str, str]]:
    """(guide, remark, description) of the follow_user / follow_info entries WeCom returned."""
    return [(str(f.get("userid", "")), str(f.get("remark") or ""),
             str(f.get("description") or "")) for f in follows or []
            if isinstance(f, dict) and f.get("userid")]


# externalcontact/get pages follow_user past 500 entries and answers next_cursor until the last
# page. The 500 is from memory, not confirmed in WeCom's documentation; guidebot does not rely on
# it: it follows next_cursor whatever the page size. The bound keeps a cursor WeCom never ends
# from looping: 100 pages of 500 is more relations than one customer plausibly has.
FOLLOW_PAGES_MAX = 100


async def read_contact(client: WeComClient, tenant: str, external_userid: str, *,
                       max_pages: int = FOLLOW_PAGES_MAX) -> dict[str, Any]:
    """externalcontact/get with follow_user merged from every page: next_cursor followed
    until empty, at most `max_pages` pages (what they held is kept), stopping at a cursor
    already seen. The external_contact part is the first page's (it is the same on every
    page); an entry of a guide listed twice is the later page's, one without a userid is
    dropped. A failure on any page raises (WeComError): nothing half-read is stored."""
    first = await client.get_external_contact(external_userid)
    follows: dict[str, dict[str, Any]] = {}  # by userid, in WeCom's order
    seen: set[str] = set()
    response, pages = first, 1
    while True:
        for follow in response.get("follow_user") or []:
            if isinstance(follow, dict) and follow.get("userid"):
                follows[str(follow["userid"])] = follow
        cursor = str(response.get("next_cursor") or "")
        if not cursor:
            break
        if cursor in seen or pages >= max_pages:
            log.warning("follow_user paging stopped tenant=%s customer=%s pages=%d (%s)",
                        tenant, external_userid, pages,
                        "cursor repeated" if cursor in seen else "page limit")
            break
        seen.add(cursor)
        response = await client.get_external_contact(external_userid, cursor=cursor)
        pages += 1
    if pages > 1:
        log.info("follow_user read over pages tenant=%s customer=%s pages=%d follows=%d",
                 tenant, external_userid, pages, len(follows))
    return {**first, "follow_user": list(follows.values()), "next_cursor": ""}


RECENT_S = 120.0  # a profile read for a welcome is stored by the add's follow-up from memory
RECENT_KEPT = 10_000


class ProfileService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient]) -> None:
        self._db = db
        self._client_for = client_for
        self._recent: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        # A burst's profiles are stored together (one transaction per batch).
        self._stores: GroupCommit[Stored, None] = \
            GroupCommit(self._store_batch, key=lambda row: (row[0], row[1]))

    async def name(self, tenant: str, external_userid: str, *, wait_s: float) -> str:
        """The customer's name from WeCom for a welcome, waiting at most `wait_s`; "" when
        WeCom fails or is slow. Nothing is written: `fetch` stores it afterwards."""
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a cancellation
            # that arrives as the fetch completes, and a task told to stop would carry on.
            async with asyncio.timeout(wait_s):
                response = await self._read(tenant, external_userid)
        except TimeoutError:
            log.warning("profile fetch slow tenant=%s customer=%s; welcome goes without name",
                        tenant, external_userid)
            return ""
        except WeComError as exc:
            log.warning("profile fetch failed tenant=%s customer=%s errcode=%s", tenant,
                        external_userid, exc.errcode)
            return ""
        return str(profile_fields(response)["name"])

    async def fetch(self, tenant: str, external_userid: str) -> str | None:
        """Fetch (or take the one read moments ago) and store the profile; the customer's
        name, or None when WeCom failed."""
        try:
            response = await self._read(tenant, external_userid)
        except WeComError as exc:
            log.warning("profile fetch failed tenant=%s customer=%s errcode=%s", tenant,
                        external_userid, exc.errcode)
            return None
        return str((await self._store(tenant, external_userid, response))["name"])

    async def _read(self, tenant: str, external_userid: str) -> dict[str, Any]:
        key = (tenant, external_userid)
        kept = self._recent.pop(key, None)
        if kept is not None and time.monotonic() - kept[0] < RECENT_S:
            return kept[1]
        response = await read_contact(self._client_for(tenant), tenant, external_userid)
        self._recent[key] = (time.monotonic(), response)
        while len(self._recent) > RECENT_KEPT:
            self._recent.popitem(last=False)
        return response

    async def follow_of(self, tenant: str, external_userid: str, *,
                        guide: str) -> dict[str, Any] | None:
        """`refresh`, with a relation WeCom no longer has (84061) as None."""
        try:
            return await self.refresh(tenant, external_userid, guide=guide)
        except NoRelation:
            return None

    async def refresh(self, tenant: str, external_userid: str, *,
                      guide: str) -> dict[str, Any] | None:
        """Fetch (every follow_user page) and store the profile and every guide's remark
        (WeComError propagates, so the caller's event is retried) and return `guide`'s
        follow_user entry — its remark, state and tags — or None without one."""
        response = await read_contact(self._client_for(tenant), tenant, external_userid)
        await self._store(tenant, external_userid, response)
        for follow in response["follow_user"]:
            if isinstance(follow, dict) and follow.get("userid") == guide:
                return dict(follow)
        return None

    async def _store(self, tenant: str, external_userid: str,
                     response: dict[str, Any]) -> dict[str, Any]:
        fields = profile_fields(response)
        remarks = remarks_of(response.get("follow_user"))
        await self._stores.submit((tenant, external_userid, fields, utcnow(), remarks))
        return fields

    async def _store_batch(self, rows: list[Stored]) -> list[None]:
        async with self._db.write() as s:
            await repo.set_profiles(s, rows=[(t, c, f, at) for t, c, f, at, _ in rows])
            by_tenant: dict[str, list[tuple[str, str, str, str]]] = {}
            for tenant, customer, _, _, remarks in rows:  # one statement per tenant
                by_tenant.setdefault(tenant, []).extend(
                    (guide, customer, remark, description)
                    for guide, remark, description in remarks)
            for tenant, found in by_tenant.items():
                await repo.set_remarks(s, tenant=tenant, rows=found)
        return [None] * len(rows)

    async def fill_missing(self, tenant: str, *, limit: int = 100) -> int:
        """Fetch profiles that an earlier failure left empty; returns how many succeeded."""
        async with self._db.read() as s:
            missing = await repo.customers_without_profile(s, tenant=tenant, limit=limit)
        filled = 0
        for external_userid in missing:
            if await self.fetch(tenant, external_userid) is not None:
                filled += 1
        return filled
