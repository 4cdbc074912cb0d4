"""Read models of the console's record pages (guides, customers and their conversations,
orders, outbox) and the one write it offers outside commerce: putting a dead outbox row
back in the queue."""

from __future__ import annotations

from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import console as repo
from guidebot.db.types import utcnow
from guidebot.errors import StateConflict
from guidebot.stats import customer_list
from guidebot.stats.customer_list import CustomerPage, CustomerSearch

PAGE = 200
CONVERSATION = 100  # the latest 微信客服 messages on a customer's page


class Records:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def guides(self, tenant: str) -> list[dict[str, Any]]:
        async with self._db.read() as s:
            return await repo.guide_rows(s, tenant=tenant)

    async def guide_names(self, tenant: str) -> dict[str, str]:
        async with self._db.read() as s:
            return await repo.guide_names(s, tenant=tenant)

    async def store_names(self, tenant: str) -> dict[str, str]:
        async with self._db.read() as s:
            return await repo.store_names(s, tenant=tenant)

    async def tag_names(self, tenant: str) -> list[str]:
        async with self._db.read() as s:
            return await repo.tag_names(s, tenant=tenant)

    async def search(self, tenant: str, search: CustomerSearch, *,
                     after: str = "") -> CustomerPage:
        return await customer_list.page(self._db, tenant, search, limit=PAGE, after=after)

    async def conversation(self, tenant: str, external_userid: str) -> list[Any]:
        async with self._db.read() as s:
            return await repo.conversation(s, tenant=tenant, external_userid=external_userid,
                                           limit=CONVERSATION)

    async def customer_names(self, tenant: str, external_userids: list[str]) -> dict[str, str]:
        async with self._db.read() as s:
            return await repo.customer_names(s, tenant=tenant,
                                             external_userids=external_userids)

    async def outbox(self, tenant: str) -> dict[str, list[Any]]:
        """Rows waiting (with their due time) apart from dead ones (with the time they died:
        a dead row's due time is no next try, see outbox.next_try_at) and the latest tasks."""
        async with self._db.read() as s:
            pending = await repo.outbox_rows(s, tenant=tenant,
                                             statuses=["pending", "sending", "failed"],
                                             limit=PAGE)
            dead = await repo.outbox_rows(s, tenant=tenant, statuses=["dead"], limit=PAGE)
            tasks = await repo.task_rows(s, tenant=tenant, limit=PAGE)
        return {"pending": list(pending), "dead": list(dead), "tasks": list(tasks)}

    async def requeue(self, tenant: str, item_id: int) -> bool:
        """A dead row sent again (the retry job's); False when there is no such dead row
        of the tenant. A row whose texts data retention blanked is refused: what it would
        send is gone, and an empty message must not go out in its place."""
        async with self._db.write() as s:
            if await repo.requeue_dead(s, tenant=tenant, item_id=item_id, now=utcnow()):
                return True
            blanked = await repo.dead_and_blanked(s, tenant=tenant, item_id=item_id)
        if blanked:
            raise StateConflict(
                f"outbox item {item_id}: its texts were blanked by data retention "
                f"(outbox_days); there is nothing left to send", code="outbox_text_removed")
        return False
