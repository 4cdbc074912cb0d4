"""Queries for the group welcome templates guidebot keeps in WeCom (group_welcome_templates)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_groups import GroupWelcomeTemplate
from guidebot.db.writes import ByDialect, Write

_TABLE = GroupWelcomeTemplate.__table__  # type: ignore[attr-defined]
_KEEP = ByDialect({name: (lambda ins: ins.on_conflict_do_update(
    index_elements=["tenant", "name"],
    set_={c: ins.excluded[c] for c in ("template_id", "digest", "synced_at")}))(
        dialect.insert(_TABLE)) for name, dialect in (("sqlite", sqlite),
                                                      ("postgresql", postgresql))})
_FORGET = _TABLE.delete().where(_TABLE.c.tenant == bindparam("t"),
                                _TABLE.c.name == bindparam("n"))


async def templates(session: AsyncSession, *, tenant: str) -> dict[str, GroupWelcomeTemplate]:
    stmt = select(GroupWelcomeTemplate).where(GroupWelcomeTemplate.tenant == tenant)
    return {t.name: t for t in (await session.execute(stmt)).scalars()}


def kept(*, tenant: str, name: str, template_id: str, digest: str, at: datetime) -> Write:
    """The template as WeCom now holds it (written with its outbox row's end)."""
    return Write(_KEEP, {"tenant": tenant, "name": name, "template_id": template_id,
                         "digest": digest, "synced_at": at})


def forgotten(*, tenant: str, name: str) -> Write:
    """The template is gone from WeCom (written with its outbox row's end)."""
    return Write(_FORGET, {"t": tenant, "n": name})
