"""Records each LLM call's tokens for usage metering (llm_calls). The model client reports
every answered call here, an answer later refused included (an invented price, a leak, an
empty text): the endpoint bills its tokens all the same. Concurrent calls are written together
(a group commit); a failed write is logged and never fails the answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from guidebot.db.engine import Database
from guidebot.db.group_commit import GroupCommit
from guidebot.db.repo import usage as repo
from guidebot.db.types import utcnow
from guidebot.llm.client import TokenUse

log = logging.getLogger(__name__)


class LlmMeter:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._rows: GroupCommit[dict[str, object], None] = GroupCommit(self._write)

    async def __call__(self, use: TokenUse) -> None:
        row = {"tenant": use.tenant, "at": self._clock(), "purpose": use.purpose[:32],
               "model": use.model[:128], "prompt_tokens": use.prompt_tokens,
               "completion_tokens": use.completion_tokens}
        try:
            await self._rows.submit(row)
        except Exception as exc:  # noqa: BLE001 - metering never fails the answer
            log.warning("llm usage not recorded tenant=%s purpose=%s prompt_tokens=%d "
                        "completion_tokens=%d error=%s", use.tenant, use.purpose,
                        use.prompt_tokens, use.completion_tokens, type(exc).__name__)

    async def _write(self, rows: list[dict[str, object]]) -> list[None]:
        async with self._db.write() as s:
            await repo.record_llm_calls(s, rows)
        return [None] * len(rows)
