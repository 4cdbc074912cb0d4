"""Access-token storage protocol and the per-tenant refresh-once-under-a-lock logic."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

logger = logging.getLogger(__name__)

EXPIRY_MARGIN = timedelta(minutes=5)

Fetcher = Callable[[], Awaitable[tuple[str, datetime]]]


class TokenStore(Protocol):
    """Where a tenant's access token lives; shared by every process when database-backed."""

    async def get(self, tenant_id: str) -> tuple[str, datetime] | None: ...

    async def put(self, tenant_id: str, token: str, expires_at: datetime) -> None: ...

    async def invalidate(self, tenant_id: str, token: str) -> None:
        """Forget the stored token, but only if it is still `token`."""


class InMemoryTokenStore:
    """A TokenStore for one process (scripts, the CLI); not shared across processes."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, datetime]] = {}

    async def get(self, tenant_id: str) -> tuple[str, datetime] | None:
        return self._tokens.get(tenant_id)

    async def put(self, tenant_id: str, token: str, expires_at: datetime) -> None:
        self._tokens[tenant_id] = (token, expires_at)

    async def invalidate(self, tenant_id: str, token: str) -> None:
        current = self._tokens.get(tenant_id)
        if current is not None and current[0] == token:
            del self._tokens[tenant_id]


def is_usable(expires_at: datetime, now: datetime | None = None) -> bool:
    """Tokens count as expired EXPIRY_MARGIN before WeCom says they expire."""
    return expires_at - EXPIRY_MARGIN > (now or datetime.now(UTC))


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def refresh_lock(tenant_id: str) -> asyncio.Lock:
    """One lock per tenant per event loop, shared by every client in the process."""
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(tenant_id, asyncio.Lock())


class TokenKeeper:
    """Hands out a usable token for one tenant, fetching at most once per process at a time."""

    def __init__(self, tenant_id: str, store: TokenStore, fetch: Fetcher) -> None:
        self.tenant_id = tenant_id
        self._store = store
        self._fetch = fetch

    async def current(self) -> str:
        token = await self._stored()
        if token is not None:
            return token
        async with refresh_lock(self.tenant_id):
            # Another caller may have refreshed while we waited for the lock.
            token = await self._stored()
            if token is not None:
                return token
            return await self._fetch_and_store()

    async def discard(self, rejected: str) -> None:
        """WeCom rejected `rejected`: drop it from the store unless someone already replaced it."""
        await self._store.invalidate(self.tenant_id, rejected)

    async def _stored(self) -> str | None:
        stored = await self._store.get(self.tenant_id)
        if stored is None or not is_usable(stored[1]):
            return None
        return stored[0]

    async def _fetch_and_store(self) -> str:
        token, expires_at = await self._fetch()
        await self._store.put(self.tenant_id, token, expires_at)
        logger.info("wecom access token fetched tenant=%s expires_at=%s",
                    self.tenant_id, expires_at.isoformat())
        return token
