"""Customer profiles from externalcontact/get; a failed fetch never drops the link."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import contacts as repo
from guidebot.db.types import utcnow
from guidebot.errors import WeComError
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)


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


class ProfileService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient]) -> None:
        self._db = db
        self._client_for = client_for

    async def fetch(self, tenant: str, external_userid: str) -> str | None:
        """Fetch and store the profile; the customer's name, or None when WeCom failed."""
        try:
            response = await self._client_for(tenant).get_external_contact(external_userid)
        except WeComError as exc:
            log.warning("profile fetch failed tenant=%s customer=%s errcode=%s", tenant,
                        external_userid, exc.errcode)
            return None
        return str((await self._store(tenant, external_userid, response))["name"])

    async def refresh(self, tenant: str, external_userid: str, *,
                      guide: str) -> dict[str, Any] | None:
        """Fetch and store the profile (WeComError propagates, so the caller's event is
        retried) and return `guide`'s follow_user entry — its remark, state and tags — paging
        through follow_user (FACTS §3.2: cursor pages it past 500), or None without one."""
        client = self._client_for(tenant)
        response = await client.get_external_contact(external_userid)
        await self._store(tenant, external_userid, response)
        seen: set[str] = set()
        while True:
            for follow in response.get("follow_user") or []:
                if follow.get("userid") == guide:
                    return dict(follow)
            cursor = str(response.get("next_cursor") or "")
            if not cursor or cursor in seen:
                return None
            seen.add(cursor)
            response = await client.get_external_contact(external_userid, cursor=cursor)

    async def _store(self, tenant: str, external_userid: str,
                     response: dict[str, Any]) -> dict[str, Any]:
        fields = profile_fields(response)
        async with self._db.write() as s:
            await repo.set_profile(s, tenant=tenant, external_userid=external_userid,
                                   profile=fields, at=utcnow())
        return fields

    async def fill_missing(self, tenant: str, *, limit: int = 100) -> int:
        """Fetch profiles that an earlier failure left empty; returns how many succeeded."""
        async with self._db.read() as s:
            missing = await repo.customers_without_profile(s, tenant=tenant, limit=limit)
        filled = 0
        for external_userid in missing:
            if await self.fetch(tenant, external_userid) is not None:
                filled += 1
        return filled
