"""JS-SDK ticket rows (jsapi_tickets): read one, upsert one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_sidebar import JsapiTicket
from guidebot.db.repo._dialect import insert_for
from guidebot.db.types import utcnow


async def get_ticket(session: AsyncSession, *, corp_id: str, agent_id: int,
                     kind: str) -> JsapiTicket | None:
    return await session.get(JsapiTicket, (corp_id, agent_id, kind), populate_existing=True)


async def put_ticket(session: AsyncSession, *, corp_id: str, agent_id: int, kind: str,
                     ticket: str, expires_at: datetime) -> None:
    """Insert or overwrite (last writer wins: an older ticket stays valid at WeCom anyway)."""
    values = {"ticket": ticket, "expires_at": expires_at, "fetched_at": utcnow()}
    stmt = insert_for(session, JsapiTicket).values(
        corp_id=corp_id, agent_id=agent_id, kind=kind, **values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["corp_id", "agent_id", "kind"], set_=values))
