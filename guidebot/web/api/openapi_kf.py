"""OpenAPI paths of the 微信客服 admin API: a guide's kf link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_LINK = {"type": "object", "properties": {
    "url": {"type": "string", "description": "kf/add_contact_way's url with "
            "&scene_param=<token> appended; entering through it counts as the guide's touch"},
    "token": {"type": "string"}, "guide": {"type": "string"}, "open_kfid": {"type": "string"}}}
_BODY = {"type": "object", "required": ["guide", "open_kfid"], "properties": {
    "guide": {"type": "string"},
    "open_kfid": {"type": "string", "description": "one of [tenants.<id>.kf] open_kfids"}}}


def kf_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return {"/api/v1/{tenant}/kf/links": {"post": op(
        "A guide's 微信客服 link (kf/add_contact_way + scene_param)", _LINK, body=_BODY,
        status="201")}}
