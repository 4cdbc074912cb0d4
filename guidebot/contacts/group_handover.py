"""Handing customer groups to a new owner (群继承): a resigned guide's groups (groupchat/transfer)
or an active guide's (groupchat/onjob_transfer), 100 a call through the outbox (FACTS-next
§C.6). WeCom answers which groups it refused and why (90500 群主并未离职, 90501 非客户群,
90502 群主已经离职, 90504 群主没变, 90507 离职群正在继承处理中, 90508 离职群已经继承, …);
the others are read back and stored. A resigned owner's group is marked 离职继承中 (status 2)
at once, as WeCom's group list then says; the daily sync brings the later state."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from guidebot.contacts.groups import GroupService
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import groups as repo
from guidebot.errors import ValidationFailed, WeComError
from guidebot.outbox import CallStatus, Executor, Outbox
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "group_transfer"  # the outbox kind
CHUNK = 100  # FACTS-next §C.6: 1–100 chats per call
MAX_GROUPS = 1000  # one hand-over; more in several
INHERITING = 2  # groupchat/list status 2: 离职继承中


def all_refused(result: dict[str, Any]) -> bool:
    """A hand-over's `{transferred, failed}` in which WeCom refused every group: nothing
    changed (a failed call, errcode None, is still queued in the outbox to be retried)."""
    return not result["transferred"] and all(
        f["errcode"] is not None for f in result["failed"])


class GroupHandover:
    def __init__(self, db: Database, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], groups: GroupService) -> None:
        self._db, self._outbox, self._client_for, self._groups = db, outbox, client_for, groups

    async def hand_over(self, tenant: str, *, chat_ids: Sequence[str], new_owner: str,
                        resigned: bool) -> dict[str, Any]:
        """Ask WeCom to give these groups to `new_owner`; `{transferred, failed}` with each
        refused group's errcode (None when the call itself failed: the outbox retries it).
        ValidationFailed, nothing asked, for a new owner who is not an active guide or groups
        this tenant does not know."""
        chosen = sorted(set(chat_ids))
        if not chosen or len(chosen) > MAX_GROUPS:
            raise ValidationFailed(f"chat_ids: 1 to {MAX_GROUPS} groups",
                                   code="groups_count", max=MAX_GROUPS)
        if not new_owner:
            raise ValidationFailed("new_owner: required", code="groups_owner_missing")
        async with self._db.read() as s:
            owner = await contacts_repo.get_guide(s, tenant=tenant, userid=new_owner)
            known = await repo.live_ids(s, tenant=tenant)
        if owner is None or not owner.active:
            raise ValidationFailed(f"new_owner: {new_owner} is not an active guide",
                                   code="groups_owner", guide=new_owner)
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise ValidationFailed(f"chat_ids: {len(unknown)} unknown or dismissed "
                                   f"({', '.join(unknown[:5])})", code="groups_unknown",
                                   n=len(unknown))
        request = secrets.token_hex(8)
        transferred: list[str] = []
        failed: list[dict[str, Any]] = []
        for n in range(0, len(chosen), CHUNK):
            chunk = chosen[n:n + CHUNK]
            outcome = await self._outbox.run(
                tenant=tenant, key=f"{KIND}:{request}:{n // CHUNK}", kind=KIND,
                payload={"chat_ids": chunk, "new_owner": new_owner, "resigned": resigned},
                call=self.send)
            if outcome.status is CallStatus.DONE and outcome.result is not None:
                transferred += outcome.result["transferred"]
                failed += outcome.result["failed"]
            else:
                failed += [{"chat_id": c, "errcode": None} for c in chunk]
        for chat_id in transferred:  # WeCom has them: a failed read only waits for the sync
            try:
                await self._groups.refresh(tenant, chat_id)
            except WeComError as exc:
                log.warning("group read back tenant=%s chat=%s errcode=%s", tenant, chat_id,
                            exc.errcode)
        if resigned and transferred:
            async with self._db.write() as s:
                await repo.set_status(s, tenant=tenant, chat_ids=transferred,
                                      status=INHERITING)
        log.info("groups handed over tenant=%s new_owner=%s resigned=%s transferred=%d "
                 "failed=%d", tenant, new_owner, resigned, len(transferred), len(failed))
        return {"transferred": transferred, "failed": failed}

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "group_transfer": one call of ≤ 100 groups."""
        chunk = [str(c) for c in payload["chat_ids"]]
        answer = await self._client_for(tenant).transfer_group_chats(
            resigned=bool(payload["resigned"]), chat_ids=chunk,
            new_owner=str(payload["new_owner"]))
        failed = [{"chat_id": str(f.get("chat_id")), "errcode": int(f.get("errcode") or 0)}
                  for f in answer.get("failed_chat_list") or [] if isinstance(f, dict)]
        refused = {f["chat_id"] for f in failed}
        return {"transferred": [c for c in chunk if c not in refused], "failed": failed}

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send}
