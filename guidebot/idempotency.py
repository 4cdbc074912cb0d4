"""Idempotent creations of the admin API (channels, links): a key with the same body answers
the stored result (200); with another body, 409 and what is stored."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from guidebot.db.engine import Database
from guidebot.db.repo import idempotency as repo
from guidebot.errors import Conflict


def digest(request: BaseModel) -> str:
    canonical = request.model_dump_json(exclude={"key"})
    return hashlib.sha256(canonical.encode()).hexdigest()


async def stored(db: Database, tenant: str, scope: str, key: str | None,
                 request: BaseModel) -> dict[str, Any] | None:
    """The result stored under `key` for this body; Conflict when the body differs."""
    if not key:
        return None
    async with db.read() as s:
        record = await repo.get(s, tenant=tenant, scope=scope, key=key)
    if record is None:
        return None
    result: dict[str, Any] = json.loads(record.result)
    if record.digest != digest(request):
        raise Conflict(key, result)
    return result


async def remember(db: Database, tenant: str, scope: str, key: str | None,
                   request: BaseModel, result: dict[str, Any]) -> None:
    if key:
        async with db.write() as s:
            await repo.put(s, tenant=tenant, scope=scope, key=key, digest=digest(request),
                           result=json.dumps(result, ensure_ascii=False))
