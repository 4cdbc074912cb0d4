"""The record of every /cgi-bin call, for tests and dry-runs to inspect."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

MASK = "***"
SECRET_PARAMS = ("access_token", "corpsecret")


class CallLog:
    """Keeps the most recent `kept` calls (older ones fall off, so a long dry-run stays small)."""

    def __init__(self, kept: int) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=kept)

    def record(
        self, *, tenant: str | None, path: str, query: dict[str, str], body: Any, now: float
    ) -> dict[str, Any]:
        masked = {k: (MASK if k in SECRET_PARAMS else v) for k, v in query.items()}
        entry = {
            "tenant": tenant,
            "path": path,
            "query": masked,
            "body": body,
            "at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "errcode": None,
        }
        self._calls.append(entry)
        return entry

    def select(self, tenant: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        return [
            dict(c) for c in self._calls
            if (tenant is None or c["tenant"] == tenant) and (path is None or c["path"] == path)
        ]

    def clear(self) -> None:
        self._calls.clear()
