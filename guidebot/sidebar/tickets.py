"""The app's jsapi ticket for agentConfig / ww.register, and the JS-SDK signature.

FACTS-next §B.2: a ticket lives 7200 s, and fetches are limited per hour (≤ 100 per app,
≤ 400 per corp), so a ticket is fetched once per corp and agent and kept in the database,
where every guidebot process finds it; each process also remembers it in memory until it is
REFRESH_EARLY from its end, then fetches the next one. Two processes that both find it
expired at the same instant may both fetch (two fetches, well inside the limit).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import string
from collections.abc import Callable
from datetime import datetime, timedelta

from guidebot.db.engine import Database
from guidebot.db.repo import jsapi_tickets as repo
from guidebot.db.types import utcnow
from guidebot.errors import WeComTransportError
from guidebot.settings import TenantSettings
from guidebot.wecom.client import WeComClient

AGENT_CONFIG = "agent_config"
REFRESH_EARLY = timedelta(minutes=5)  # "refresh a few minutes early"
NONCE_ALPHABET = string.ascii_letters + string.digits
NONCE_LENGTH = 16


def signature(*, ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """FACTS-next §B.3: sha1 over the four keys in ASCII order, raw values (no escaping),
    and the page URL without its fragment."""
    page = url.split("#", 1)[0]
    raw = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page}"
    return hashlib.sha1(raw.encode()).hexdigest()


def new_nonce() -> str:
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))


class AgentTickets:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient], *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._client_for = client_for
        self.clock = clock
        self._known: dict[tuple[str, int], tuple[str, datetime]] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    def _fresh(self, found: tuple[str, datetime] | None) -> str | None:
        """The ticket while it has more than REFRESH_EARLY left."""
        if found is not None and found[1] - REFRESH_EARLY > self.clock():
            return found[0]
        return None

    async def ticket(self, tenant: TenantSettings) -> str:
        key = (tenant.corp_id, tenant.agent_id)
        known = self._fresh(self._known.get(key))
        if known is not None:
            return known
        async with self._locks.setdefault(key, asyncio.Lock()):
            async with self._db.read() as s:
                row = await repo.get_ticket(s, corp_id=key[0], agent_id=key[1],
                                            kind=AGENT_CONFIG)
            found = ((row.ticket, row.expires_at)
                     if row is not None and self._fresh((row.ticket, row.expires_at))
                     else await self._fetch(tenant))
            self._known[key] = found
            return found[0]

    async def _fetch(self, tenant: TenantSettings) -> tuple[str, datetime]:
        started = self.clock()
        result = await self._client_for(tenant.id).get_agent_jsapi_ticket()
        try:
            ticket = str(result["ticket"])
            expires_at = started + timedelta(seconds=int(result.get("expires_in", 7200)))
        except (KeyError, TypeError, ValueError):
            raise WeComTransportError(None, "malformed ticket/get answer",
                                      path="ticket/get") from None
        async with self._db.write() as s:
            await repo.put_ticket(s, corp_id=tenant.corp_id, agent_id=tenant.agent_id,
                                  kind=AGENT_CONFIG, ticket=ticket, expires_at=expires_at)
        return ticket, expires_at

    async def sign(self, tenant: TenantSettings, url: str) -> dict[str, object]:
        """What ww.register's getAgentConfigSignature(url) resolves to."""
        ticket = await self.ticket(tenant)
        timestamp, nonce = int(self.clock().timestamp()), new_nonce()
        return {"timestamp": timestamp, "nonceStr": nonce,
                "signature": signature(ticket=ticket, noncestr=nonce, timestamp=timestamp,
                                       url=url)}
