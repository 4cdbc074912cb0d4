"""自动通过好友 of channel codes: whether WeCom adds a customer who scans the code (or opens
the link) without the guide's confirmation (`skip_verify`, true by default as WeCom's own),
and an optional window of the tenant's day for it (`auto_accept_hours`, "09:00-21:00"; the
end may come first, past midnight): outside it the guide must accept, so a night add waits
for a person. WeCom holds the flag, so the window's edges are update_contact_way (a QR
code) or update_link (a 获客助手 link) calls, asked through the outbox by the job
(ChannelAutoAccept.refresh_all, every minute, one process at a time) only when what the
window wants differs from what WeCom was last told (`skip_verify_now`). A refusal stays in
the outbox row (its error) and is retried: by the outbox while it may be, then by the next
pass of the job. Each code is decided and sent in its turn, shared with the daily-limit
rotation (guidebot/contacts/channel_rotation.py) and HQ's edit, and so are the outbox's
retries, so their calls for a code never interleave (but for a retry taken over from a
process that died mid-send).

That update_contact_way and update_link take skip_verify is assumed (add_contact_way and
create_link do): whether either takes it alone is not confirmed, so it is always sent with
the rest of the code's body (members, state, remark or name)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from guidebot.contacts.accept_hours import in_window
from guidebot.contacts.channel_rotation import ChannelJob
from guidebot.contacts.channels import remark_of
from guidebot.db.models import ChannelCode
from guidebot.db.repo import channels as repo
from guidebot.db.repo import outbox as outbox_repo
from guidebot.db.repo import sop_tasks as job_state
from guidebot.outbox import CallStatus, Executor

log = logging.getLogger(__name__)

KIND = "channel_verify"  # the outbox kind (nothing is sent to anyone)
PENDING = frozenset({"pending", "sending", "failed"})  # the outbox still tries the row


class ChannelAutoAccept(ChannelJob):
    def wanted(self, tenant: str, code: ChannelCode) -> bool:
        """skip_verify as WeCom should hold it now for the code."""
        if not code.skip_verify:
            return False
        local = self.clock().astimezone(self._settings.tenant(tenant).tz)
        return in_window(code.auto_accept_hours, local.time())

    async def refresh_all(self, tenant: str) -> int:
        """Every live code of the tenant whose window wants another skip_verify than WeCom
        was last told gets it asked (through the outbox); returns how many were asked. In
        one process at a time (PostgreSQL advisory lock)."""
        async with job_state.singleton(self._db.engine, f"channel-auto-accept:{tenant}") as mine:
            if not mine:
                return 0
            async with self._db.read() as s:
                codes = await repo.verify_windowed(s, tenant=tenant)
            return await self._decide_each(tenant, codes)

    def _concerns(self, code: ChannelCode) -> bool:
        return bool(code.config_id) and code.deleted_at is None

    async def _decide(self, tenant: str, code: ChannelCode) -> bool:
        assert code.id is not None
        wanted = self.wanted(tenant, code)
        if wanted == code.skip_verify_now:
            return False
        if code.skip_verify_key:
            async with self._db.read() as s:
                item = await outbox_repo.get_by_key(s, tenant=tenant, key=code.skip_verify_key)
            if item is not None and item.status in PENDING:
                return False  # the outbox retries it, sending what is wanted then
        key = f"{KIND}:{code.id}:{'on' if wanted else 'off'}:{secrets.token_hex(6)}"
        async with self._db.write() as s:
            await repo.set_verify_key(s, code_id=code.id, key=key)
        log.info("channel code %s tenant=%s: skip_verify %s asked (the window's edge)",
                 code.id, tenant, wanted)
        outcome = await self._outbox.run(tenant=tenant, key=key, kind=KIND,
                                         payload={"code_id": code.id}, call=self.send)
        if outcome.status is not CallStatus.DONE:
            log.warning("channel code %s tenant=%s: skip_verify not set (%s); retried",
                        code.id, tenant, outcome.error)
        return True

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "channel_verify": skip_verify as the window wants it
        when this runs (a late retry sends what is right then), with the code's members and
        state or name, as the database holds them; what was sent is stored once WeCom took
        it (WeComError otherwise: the outbox records and retries it)."""
        async with self._db.read() as s:
            code = await repo.get(s, tenant=tenant, code_id=int(payload["code_id"]))
        if code is None or code.deleted_at is not None or not code.config_id:
            return {"gone": True}
        wanted = self.wanted(tenant, code)
        client = self._client_for(tenant)
        if code.kind == "link":
            answer = await client.update_acquisition_link(
                link_id=code.config_id, name=remark_of(code), users=code.guide_list(),
                skip_verify=wanted)
        else:
            answer = await client.update_contact_way(
                config_id=code.config_id, users=code.serving_list(), state=code.state,
                remark=remark_of(code), skip_verify=wanted)
        async with self._db.write() as s:
            await repo.set_verify_now(s, code_id=code.id or 0, skip_verify=wanted)
        return {**answer, "skip_verify": wanted}

    def executors(self) -> dict[str, Executor]:
        """The outbox's retries: `send` in the code's turn."""
        return {KIND: self._in_turn(self.send)}
