"""unionid/openid → external_userid: stored mappings first, then WeCom's conversion API."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.commerce.schema import CustomerRef
from guidebot.db.engine import Database
from guidebot.db.repo import commerce_links as repo
from guidebot.errors import WeComError
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)


async def resolve_local(s: AsyncSession, tenant: str, ref: CustomerRef) -> str | None:
    if ref.external_userid:
        return ref.external_userid
    for kind, value in (("unionid", ref.unionid), ("openid", ref.openid)):
        if value:
            found = await repo.lookup_identity(s, tenant=tenant, kind=kind, value=value)
            if found:
                return found
    return None


class IdentityService:
    def __init__(self, db: Database, client: Callable[[str], WeComClient]) -> None:
        self._db = db
        self._client = client

    async def resolve(self, tenant: str, ref: CustomerRef) -> str | None:
        """The customer's external_userid, or None when neither we nor WeCom know it."""
        async with self._db.read() as s:
            found = await resolve_local(s, tenant, ref)
        if found or not ref.unionid or not ref.openid:
            return found
        try:
            found = await self._client(tenant).unionid_to_external_userid(
                unionid=ref.unionid, openid=ref.openid)
        except WeComError as exc:
            log.info("unionid conversion failed tenant=%s errcode=%s", tenant, exc.errcode)
            return None
        if found:
            await self.remember(tenant, ref, found, source="unionid_to_external_userid")
        return found

    async def remember(self, tenant: str, ref: CustomerRef, external_userid: str,
                       source: str) -> None:
        async with self._db.write() as s:
            await remember_in(s, tenant, ref, external_userid, source)


async def remember_in(s: AsyncSession, tenant: str, ref: CustomerRef, external_userid: str,
                      source: str) -> None:
    for kind, value in (("unionid", ref.unionid), ("openid", ref.openid)):
        if value:
            await repo.remember_identity(s, tenant=tenant, kind=kind, value=value,
                                         external_userid=external_userid, source=source)
    await repo.claim_touches(s, tenant=tenant, external_userid=external_userid,
                             unionid=ref.unionid, openid=ref.openid)
