"""media/upload: multipart part `media`, type and size rules of FACTS §3.9."""

from __future__ import annotations

import logging
from collections.abc import Callable

from guidebot.sandbox import errors, ids
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.attachments import require_media
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, Media

log = logging.getLogger(__name__)

MB = 1024 * 1024
FILE_KEY = "_file"  # a handler's answer that is a file, not JSON (media/get)
MIN_BYTES = 5  # "all > 5 bytes"
MAX_BYTES = {"image": 10 * MB, "voice": 2 * MB, "video": 10 * MB, "file": 20 * MB}
# FACTS §3.9: image JPG/PNG, voice AMR, video MP4; the sandbox checks the magic bytes.
_FORMATS: dict[str, Callable[[bytes], bool]] = {
    "image": lambda d: d.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")),
    "voice": lambda d: d.startswith(b"#!AMR"),
    "video": lambda d: d[4:8] == b"ftyp",
    "file": lambda d: True,
}


def upload(call: ApiCall) -> JSON:
    kind = call.query.get("type", "")
    if kind not in MAX_BYTES:
        raise ApiError(errors.INVALID_MEDIA_TYPE, f"invalid media type {kind!r}")
    if call.upload is None:
        raise ApiError(errors.MISSING_MEDIA, "multipart part 'media' is missing")
    data = call.upload.data
    if not MIN_BYTES < len(data) <= MAX_BYTES[kind]:
        raise ApiError(errors.INVALID_FILE_SIZE, f"{kind} must be 6 B to {MAX_BYTES[kind]} B")
    if not _FORMATS[kind](data):
        raise ApiError(errors.INVALID_FILE_TYPE, f"not a valid {kind} file")
    media = Media(ids.media_id(), kind, call.upload.filename, len(data), int(call.now),
                  data=data, content_type=call.upload.content_type)
    call.tenant.media[media.media_id] = media
    log.info("tenant %s: %s uploaded (%d bytes)", call.tenant.id, kind, len(data))
    # FACTS §3.9: created_at is a string; the doc example's errmsg is "".
    return {**ok(type=kind, media_id=media.media_id, created_at=str(media.created_at)),
            "errmsg": ""}


def get(call: ApiCall) -> JSON:
    """media/get?media_id=: the file itself (answered as bytes by the front door, cgi.py);
    an unknown media id, or one past its 3-day life (FACTS §3.9), answers 40007 (the doc
    example's code for media/get; which code an expired id gets is unconfirmed)."""
    require_media(call.tenant, call.query.get("media_id", ""), call.now)
    return {**ok(), FILE_KEY: call.tenant.media[call.query["media_id"]]}


ROUTES: dict[str, Handler] = {"media/upload": upload, "media/get": get}
