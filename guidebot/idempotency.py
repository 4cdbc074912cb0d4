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


def digest(request: BaseModel, without: frozenset[str] = frozenset()) -> str:
    canonical = request.model_dump_json(exclude={"key", *without})
    return hashlib.sha256(canonical.encode()).hexdigest()


def digests(request: BaseModel) -> set[str]:
    """The body's digest, and the digests the same body had under the request's earlier
    shapes: a shape lists the fields each release added (`added_later`, oldest first); where
    the fields a release added are at their defaults, the body is the one an older client
    sent, so a key it stored then still answers its result instead of 409."""
    found = {digest(request)}
    without: frozenset[str] = frozenset()
    for added in reversed(getattr(request, "added_later", ())):
        fields = type(request).model_fields
        if any(getattr(request, name) != fields[name].get_default(call_default_factory=True)
               for name in added):
            break
        without |= frozenset(added)
        found.add(digest(request, without))
    return found


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
    if record.digest not in digests(request):
        raise Conflict(key, result)
    return result


async def remember(db: Database, tenant: str, scope: str, key: str | None,
                   request: BaseModel, result: dict[str, Any]) -> None:
    if key:
        async with db.write() as s:
            await repo.put(s, tenant=tenant, scope=scope, key=key, digest=digest(request),
                           result=json.dumps(result, ensure_ascii=False))
