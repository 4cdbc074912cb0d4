"""Uploaded content_library pictures: the media_id per tenant and file digest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import MediaUpload
from guidebot.db.repo._dialect import insert_for


async def get_upload(session: AsyncSession, *, tenant: str,
                     digest: str) -> tuple[str, datetime] | None:
    """(media_id, uploaded_at) of the newest upload of these bytes, or None."""
    row = await session.get(MediaUpload, (tenant, digest), populate_existing=True)
    return (row.media_id, row.uploaded_at) if row is not None else None


async def put_upload(session: AsyncSession, *, tenant: str, digest: str, media_id: str,
                     uploaded_at: datetime) -> None:
    """Record an upload (two processes uploading the same file at once: the last one wins;
    both ids are valid)."""
    stmt = insert_for(session, MediaUpload).values(
        tenant=tenant, digest=digest, media_id=media_id, uploaded_at=uploaded_at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant", "digest"],
        set_={"media_id": media_id, "uploaded_at": uploaded_at}))
