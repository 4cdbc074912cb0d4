"""POSTing encrypted callbacks to the bot, retried like WeCom on any non-200 (FACTS §1.5)."""

from __future__ import annotations

import logging

import aiohttp

from guidebot.sandbox.callbacks import Envelope
from guidebot.sandbox.models import JSON, Options

log = logging.getLogger(__name__)


def not_delivered() -> JSON:
    return {"status": None, "error": None, "attempts": 0}


class Deliverer:
    """Holds one client session; never holds sandbox state across its awaits."""

    def __init__(self, options: Options) -> None:
        self._options = options
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._options.delivery_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, envelope: Envelope) -> JSON:
        """Deliver; answer {status, error, attempts} (status None when no HTTP answer came)."""
        result = not_delivered()
        for attempt in range(1, self._options.delivery_attempts + 1):
            result = await self._attempt(url, envelope)
            result["attempts"] = attempt
            if result["status"] == 200:
                break
            log.warning("callback to %s failed (attempt %d): %s", url, attempt, result["error"])
        return result

    async def _attempt(self, url: str, envelope: Envelope) -> JSON:
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        try:
            async with self._client().post(
                url, params=envelope.query, data=envelope.body.encode(), headers=headers
            ) as response:
                await response.read()
                error = None if response.status == 200 else f"HTTP {response.status}"
                return {"status": response.status, "error": error}
        except (aiohttp.ClientError, TimeoutError) as exc:
            return {"status": None, "error": f"{type(exc).__name__}: {exc}"}
