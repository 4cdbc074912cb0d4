"""What an API handler receives and how it answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from guidebot.sandbox.models import JSON, Options
from guidebot.sandbox.tenant import TenantState


@dataclass(frozen=True)
class Upload:
    """The multipart part `media` of a media/upload call."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ApiCall:
    tenant: TenantState
    query: Mapping[str, str]
    body: Mapping[str, Any]
    now: float
    options: Options
    upload: Upload | None = None


Handler = Callable[[ApiCall], JSON]
# An answer's callbacks (change_external_chat fields) that the call raised: cgi.py takes them
# out of the answer and delivers them before answering, as it delivers settled transfers'.
CALLBACKS_KEY = "_callbacks"


def ok(**fields: Any) -> JSON:
    return {"errcode": 0, "errmsg": "ok", **fields}
