"""Pictures in content_library messages, uploaded for WeCom on first use.

A card's `pic_file` or an image's `file` names a JPG/PNG under content_library. WeCom wants a
media id from media/upload instead, which lives 3 days (FACTS §3.9), so guidebot uploads the
file when a message first needs it, keeps the id per tenant and file content, and uploads again
once the id is REUPLOAD_AFTER old: a send never carries an id near its end. Editing or
replacing the file changes its digest, so the next send uploads the new picture: the digest is
read again whenever the file's size, modification or change time or inode moved, and at each
use for a few seconds after a change (content/files.py, shared with the hot reload, which
notices the new file too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from guidebot.content.files import cached_file_digest, file_digest
from guidebot.content.library import PICTURE_KEYS, Library
from guidebot.db.engine import Database
from guidebot.db.repo import media as repo
from guidebot.db.types import utcnow
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

REUPLOAD_AFTER = timedelta(days=2)  # of the 3-day life: a day to spare for every send
# Files an attachment names, uploaded in place of a media id: the pictures of messages and
# cards, and a material's video (an MP4, media/upload type=video) in a 群发 task, a welcome, a
# moment or a sidebar send.
FILE_KEYS = {**PICTURE_KEYS, "video": ("file", "media_id")}
UPLOAD_TYPE = {"image": "image", "miniprogram": "image", "video": "video"}


class MediaUploads:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient],
                 library: Library, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._client_for = client_for
        self._library = library
        self.clock = clock
        # one upload of a file at a time in this process: tasks sending the same picture at
        # once wait for it and reuse its id (other processes may upload it once more each)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # what this process knows, so a send of an unchanged picture reads neither the file
        # nor the database: (tenant, digest) → (id, uploaded); the files' digests are
        # content/files.py's
        self._known: dict[tuple[str, str], tuple[str, datetime]] = {}

    async def resolve(self, tenant: str,
                      attachments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The attachments with every picture (or video) file replaced by a live media id. A
        failed upload raises (WeComError, OSError): the caller decides whether to send
        without it."""
        out = []
        for item in attachments:
            keys = FILE_KEYS.get(item["type"])
            if keys is None or keys[0] not in item:
                out.append(item)
                continue
            key, wecom_key = keys
            rest = {k: v for k, v in item.items() if k != key}
            out.append({**rest, wecom_key: await self.media_id(tenant, item[key],
                                                               UPLOAD_TYPE[item["type"]])})
        return out

    async def media_id(self, tenant: str, name: str, kind: str = "image") -> str:
        path = self._library.root / name
        key = (tenant, await self._digest(path))
        async with self._locks.setdefault(key, asyncio.Lock()):
            now = self.clock()
            known = self._known.get(key)
            if known is None:
                async with self._db.read() as s:
                    known = await repo.get_upload(s, tenant=tenant, digest=key[1])
            if known is not None and now - known[1] < REUPLOAD_AFTER:
                self._known[key] = known
                return known[0]
            data = await asyncio.to_thread(path.read_bytes)  # up to 10 MB: not on the loop
            result = await self._client_for(tenant).upload_media(kind, Path(name).name, data)
            media_id = str(result["media_id"])
            async with self._db.write() as s:
                await repo.put_upload(s, tenant=tenant, digest=key[1], media_id=media_id,
                                      uploaded_at=now)
            self._known[key] = (media_id, now)
        log.info("%s uploaded tenant=%s digest=%s bytes=%s", kind, tenant, key[1][:12],
                 len(data))
        return media_id

    async def _digest(self, path: Path) -> str:
        """The file's sha256, read again only when its mark (size, modification and change
        time, inode) changed: a picture replaced under the same name is a new digest."""
        known = cached_file_digest(path)
        return known if known is not None else await asyncio.to_thread(file_digest, path)
