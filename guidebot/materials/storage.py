"""Pictures guides contribute, kept by guidebot under `data_dir`/materials/<tenant>/ and named
by their content (sha256), so fetching the same picture twice keeps one file."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from guidebot.content.library import PICTURE_BYTES

KINDS = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}


class PictureRefused(Exception):
    """Not a picture guidebot keeps: `reason` is "type" or "size"."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def extension(data: bytes) -> str:
    """The file extension of a JPG or PNG; PictureRefused for anything else or a size that
    media/upload would not take again (6 B to 10 MB)."""
    if not PICTURE_BYTES[0] <= len(data) <= PICTURE_BYTES[1]:
        raise PictureRefused("size")
    for magic, ext in KINDS.items():
        if data.startswith(magic):
            return ext
    raise PictureRefused("type")


class PictureStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "materials"

    def path(self, tenant: str, name: str) -> Path:
        return self.root / tenant / name

    async def save(self, tenant: str, data: bytes) -> str:
        """Keep the picture; its stored name. Written to a temporary name and renamed, so a
        reader never sees half a file."""
        name = hashlib.sha256(data).hexdigest()[:40] + extension(data)
        target = self.path(tenant, name)
        if not target.exists():
            await asyncio.to_thread(_write, target, data)
        return name


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(target)
