"""Members writing to the app: text and image messages, called back like WeCom does.

An image message carries `PicUrl`, `MediaId` and `MsgId` besides the common fields; FACTS
lists only the text message's fields, so the image message's are taken from wechatpy's
ImageMessage (PicUrl, MediaId) and the text message's MsgId/AgentID [unconfirmed in FACTS].
Its MediaId works with media/get for 3 days like an uploaded file's.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.ids import media_id as new_media_id
from guidebot.sandbox.models import JSON, Media
from guidebot.sandbox.tenant import TenantState

log = logging.getLogger(__name__)

MAX_PICTURE = 20 * 1024 * 1024  # the sandbox keeps what a member sends, up to this
# A 1×1 PNG: the picture a member sends when the request gives none.
DEFAULT_PICTURE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGO4sOcCAAQCAgAPk3x4AAAAAElFTkSuQmCC")


def _str(request: Mapping[str, Any], key: str, default: str = "") -> str:
    value = request.get(key, default)
    if not isinstance(value, str):
        raise ControlError(400, f"{key} must be a string")
    return value


def _picture(request: Mapping[str, Any]) -> bytes:
    raw = _str(request, "image_base64")
    if not raw:
        return DEFAULT_PICTURE
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError(400, "image_base64 must be base64") from None
    if not 0 < len(data) <= MAX_PICTURE:
        raise ControlError(400, f"image_base64: 1 B to {MAX_PICTURE} B")
    return data


def _content_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return "image/jpeg" if data.startswith(b"\xff\xd8\xff") else "application/octet-stream"


def app_message(tenant: TenantState, now: float, request: Mapping[str, Any],
                picture_base: str) -> JSON:
    """The callback fields of a member's message to the app (a picture is kept as media)."""
    try:
        userid = tenant.member(_str(request, "userid"))
    except ApiError as exc:
        raise ControlError(400, f"userid: {exc.errmsg}") from None
    msgtype = _str(request, "msgtype", "text")
    msg_id = _str(request, "msg_id") or str(secrets.randbelow(9 * 10**18) + 10**18)
    fields: JSON = {"FromUserName": userid, "CreateTime": int(now), "MsgType": msgtype}
    if msgtype == "text":
        content = _str(request, "content")
        if not content:
            raise ControlError(400, "content must be a non-empty string")
        fields["Content"] = content
    elif msgtype == "image":
        data = _picture(request)
        media = Media(new_media_id(), "image", f"{msg_id}.jpg", len(data), int(now), data=data,
                      content_type=_content_type(data))
        tenant.media[media.media_id] = media
        fields["PicUrl"] = f"{picture_base}/{media.media_id}"
        fields["MediaId"] = media.media_id
    else:
        raise ControlError(400, 'msgtype must be "text" or "image"')
    fields["MsgId"] = msg_id
    fields["AgentID"] = tenant.settings.agent_id
    log.info("tenant %s: %s wrote to the app (%s)", tenant.id, userid, msgtype)
    return fields
