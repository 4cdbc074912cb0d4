"""Validation of welcome / 群发 attachments (image, video, file, link, mini-program; WeCom's
add_msg_template and send_welcome_msg docs list these five) and of media ids the sandbox
issued."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guidebot.sandbox import errors, params
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON
from guidebot.sandbox.tenant import TenantState

MAX_ATTACHMENTS = 9
MEDIA_LIFETIME_S = 3 * 86400  # FACTS §3.9: media_id valid 3 days
MINIPROGRAM_TITLE_BYTES = 64  # FACTS §4 [copy]


def require_media(tenant: TenantState, media_id: object, now: float) -> None:
    """40007 unless `media_id` came from this tenant's media/upload within 3 days."""
    media = tenant.media.get(media_id) if isinstance(media_id, str) else None
    if media is None or media.created_at + MEDIA_LIFETIME_S <= now:
        raise ApiError(errors.INVALID_MEDIA_ID, f"invalid media_id {media_id!r}")


def check_attachments(tenant: TenantState, raw: object, now: float) -> list[JSON]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError(errors.INVALID_ATTACHMENT, "attachments must be a list")
    if len(raw) > MAX_ATTACHMENTS:
        raise ApiError(errors.TOO_MANY_ATTACHMENTS, f"more than {MAX_ATTACHMENTS} attachments")
    for item in raw:
        _check_one(tenant, item, now)
    return list(raw)


def _check_one(tenant: TenantState, item: object, now: float) -> None:
    kind = item.get("msgtype") if isinstance(item, dict) else None
    content = item.get(kind) if isinstance(item, dict) and isinstance(kind, str) else None
    if kind not in _CHECKS or not isinstance(content, dict):
        raise ApiError(errors.INVALID_ATTACHMENT, f"invalid attachment type {kind!r}")
    _CHECKS[kind](tenant, content, now)


def _image(tenant: TenantState, content: Mapping[str, Any], now: float) -> None:
    # FACTS §3.5: image needs media_id or pic_url; media_id wins.
    if content.get("media_id"):
        require_media_of(tenant, "image", content["media_id"], now)
    else:
        params.text(content, "pic_url", required=True)


def require_media_of(tenant: TenantState, kind: str, media_id: object, now: float) -> None:
    """`require_media`, and the id was uploaded as `kind`: a video attachment (add_msg_template,
    send_welcome_msg, add_moment_task) names a media/upload type=video id (an MP4 of at most
    10 MB, FACTS §3.9), a file one a type=file id, an image one an image. Which error WeCom
    gives for an id of another type is not confirmed: the sandbox answers 41065."""
    require_media(tenant, media_id, now)
    uploaded = tenant.media[str(media_id)].type
    if uploaded != kind:
        raise ApiError(errors.INVALID_ATTACHMENT,
                       f"{kind} attachment names a media id uploaded as {uploaded}")


def _video(tenant: TenantState, content: Mapping[str, Any], now: float) -> None:
    require_media_of(tenant, "video", content.get("media_id"), now)


def _file(tenant: TenantState, content: Mapping[str, Any], now: float) -> None:
    require_media_of(tenant, "file", content.get("media_id"), now)


def _link(tenant: TenantState, content: Mapping[str, Any], now: float) -> None:
    params.text(content, "title", required=True)
    params.text(content, "url", required=True)


def _miniprogram(tenant: TenantState, content: Mapping[str, Any], now: float) -> None:
    title = params.text(content, "title", required=True)
    params.within_bytes(title, "miniprogram.title", MINIPROGRAM_TITLE_BYTES)
    params.text(content, "appid", required=True)
    params.text(content, "page", required=True)
    require_media(tenant, content.get("pic_media_id"), now)


_CHECKS = {
    "image": _image, "video": _video, "file": _file, "link": _link, "miniprogram": _miniprogram,
}
