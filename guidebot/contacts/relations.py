"""Follow relations (a guide and a customer) and exclusive-guide bindings, from contact events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot import events as ev
from guidebot.contacts import binding as rules
from guidebot.contacts import state_codec
from guidebot.db.engine import Database
from guidebot.db.group_commit import GroupCommit
from guidebot.db.models import Binding, ChannelCode
from guidebot.db.repo import contacts as repo
from guidebot.settings import Settings, TenantSettings

TRANSFER_MATCH_WINDOW = timedelta(days=2)  # takeover add ↔ handover delete (order unverified)
# The follow event of a takeover guide's relation after a transfer guidebot saw complete: the
# customer follows a guide again, but was not added (no add, no new customer in statistics).
TRANSFERRED_IN = "transferred_in"


@dataclass(frozen=True)
class Relation:
    """A relation as recorded by an add: the event, and the channel code its state named."""

    event: ev.ContactAdded
    code: ChannelCode | None
    store_id: str | None
    guide_name: str = ""  # as the add found them, for the welcome
    store_name: str = ""

    @property
    def tenant(self) -> str:
        return self.event.tenant

    @property
    def campaign(self) -> str:
        return self.code.campaign if self.code else ""

    @property
    def channel_tags(self) -> tuple[str, ...]:
        return tuple(json.loads(self.code.tags)) if self.code else ()

    @property
    def own_welcome(self) -> str | None:
        """The welcome message the channel code names (it beats an SOP's)."""
        return self.code.welcome_message if self.code and self.code.welcome_message else None


def as_period(b: Binding | repo.BindingRow) -> rules.Period:
    return rules.Period(b.guide, b.started_at, b.ended_at, b.end_reason)


def exclusive_guide(bindings: Sequence[Binding | repo.BindingRow], at: datetime,
                    tenant: TenantSettings) -> str | None:
    """The guide of the binding in force at `at`: open, and valid on the tenant's
    binding_validity_days (the rule attribution and the audiences apply)."""
    current = rules.current([as_period(b) for b in bindings], at,
                            tenant.commission.binding_validity_days)
    return current.guide if current else None


class RelationService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db
        self._adds: GroupCommit[tuple[ev.ContactAdded, int | None], Relation] = GroupCommit(
            self._record_adds, key=lambda add: (add[0].tenant, add[0].external_userid))

    async def record_add(self, event: ev.ContactAdded, inbox_id: int | None) -> Relation:
        """The relation, its follow event and (unless half-added) the binding rules; written
        with the other adds of the moment in one transaction (a burst's adds share it)."""
        return await self._adds.submit((event, inbox_id))

    async def _record_adds(self, adds: list[tuple[ev.ContactAdded, int | None]]
                           ) -> list[Relation]:
        by_tenant: dict[str, list[int]] = {}
        for i, (event, _) in enumerate(adds):
            by_tenant.setdefault(event.tenant, []).append(i)
        relations: list[Relation | None] = [None] * len(adds)
        async with self._db.write() as s:
            for tenant_id, indexes in by_tenant.items():
                tenant = self._settings.tenant(tenant_id)
                for i, relation in zip(indexes, await self._record_tenant_adds(
                        s, tenant, [adds[i] for i in indexes]), strict=True):
                    relations[i] = relation
        return [r for r in relations if r is not None]

    async def _record_tenant_adds(self, s: AsyncSession, tenant: TenantSettings,
                                  adds: list[tuple[ev.ContactAdded, int | None]]
                                  ) -> list[Relation]:
        code_ids = {i: state_codec.decode(e.state) if e.state else None
                    for i, (e, _) in enumerate(adds)}
        codes = await repo.channel_codes(s, tenant=tenant.id, code_ids=[
            c for c in code_ids.values() if c is not None])
        code_of = [codes.get(code_ids[i]) if code_ids[i] is not None else None  # type: ignore[arg-type]
                   for i in range(len(adds))]
        await repo.ensure_guides(s, rows=[(tenant.id, e.guide, code.store_id if code else None)
                                          for (e, _), code in zip(adds, code_of, strict=True)])
        await repo.ensure_customers(s, tenant=tenant.id,
                                    external_userids=[e.external_userid for e, _ in adds])
        await repo.upsert_follows(s, rows=[{
            "tenant": tenant.id, "guide": e.guide, "external_userid": e.external_userid,
            "status": "half" if e.half else "active", "state": e.state,
            "channel_code_id": code.id if code else None, "added_at": e.created_at}
            for (e, _), code in zip(adds, code_of, strict=True)])
        await repo.add_follow_events(s, rows=[{
            "tenant": tenant.id, "guide": e.guide, "external_userid": e.external_userid,
            "action": "half_added" if e.half else "added", "at": e.created_at,
            "detail": e.state[:128], "inbox_id": inbox_id} for e, inbox_id in adds])
        binding = [e for e, _ in adds if not e.half]
        if binding:
            await self._bind_on_adds(s, tenant, binding)
        guides, stores = await repo.guides_and_stores(
            s, tenant=tenant.id, userids=[e.guide for e, _ in adds],
            store_ids=[c.store_id for c in code_of if c is not None and c.store_id])
        relations = []
        for (event, _), code in zip(adds, code_of, strict=True):
            guide_name, own_store = guides.get(event.guide, ("", None))
            store_id = code.store_id if code else None
            relations.append(Relation(event, code, store_id, guide_name,
                                      stores.get(store_id or own_store or "", "")))
        return relations

    async def _bind_on_adds(self, s: AsyncSession, tenant: TenantSettings,
                            events: list[ev.ContactAdded]) -> None:
        """The binding rules of each add (one add per customer in a batch)."""
        bindings = await repo.bindings_of(s, tenant=tenant.id,
                                          external_userids=[e.external_userid for e in events])
        validity = tenant.commission.binding_validity_days
        ends: list[tuple[int, datetime | None, str]] = []
        starts: list[tuple[str, str, str, datetime]] = []
        for event in events:
            at = event.created_at
            valid = [b for b in bindings[event.external_userid]
                     if rules.valid_at(as_period(b), at, validity)]
            bound = max(valid, key=lambda b: b.started_at) if valid else None
            decision = rules.on_add(as_period(bound) if bound else None, event.guide, at,
                                    tenant.commission.protection_days)
            if decision is rules.Decision.KEEP:
                continue
            if bound is not None:
                reason = "transferred" if bound.end_reason == "transfer_pending" else "taken_over"
                ends.append((bound.id, at, reason))
            starts.append((tenant.id, event.external_userid, event.guide, at))
        await repo.end_bindings(s, rows=ends)
        await repo.add_bindings(s, rows=starts)

    async def record_guide_deleted(self, event: ev.ContactDeletedByGuide,
                                   inbox_id: int | None) -> None:
        tenant = self._settings.tenant(event.tenant)
        status = "transferred" if event.by_transfer else "deleted_by_guide"
        async with self._db.write() as s:
            if event.by_transfer and await self._already_transferred(s, tenant.id, event):
                return  # transfer_result said so first (record_transfer_done): counted once
            await self._end(s, tenant.id, event, status, inbox_id)
            if event.by_transfer:
                await self._move_binding_on_transfer(s, tenant, event)

    @staticmethod
    async def _already_transferred(s: AsyncSession, tenant: str,
                                   event: ev.ContactDeletedByGuide) -> bool:
        follows = await repo.list_follows(s, tenant=tenant, external_userid=event.external_userid)
        return any(f.guide == event.guide and f.status == "transferred" for f in follows)

    async def record_customer_deleted(self, event: ev.ContactDeletedByCustomer,
                                      inbox_id: int | None) -> None:
        tenant = self._settings.tenant(event.tenant)
        async with self._db.write() as s:
            await self._end(s, tenant.id, event, "deleted_by_customer", inbox_id)
            bound = await self._current(s, tenant, event.external_userid, event.created_at)
            if bound is not None and bound.guide == event.guide:
                assert bound.id is not None
                await repo.end_binding(s, binding_id=bound.id, at=event.created_at,
                                       reason="customer_deleted")

    async def record_transfer_failed(self, event: ev.TransferFailed,
                                     inbox_id: int | None) -> None:
        tenant = self._settings.tenant(event.tenant)
        async with self._db.write() as s:
            await repo.ensure_customer(s, tenant=tenant.id, external_userid=event.external_userid)
            await repo.add_follow_event(
                s, tenant=tenant.id, guide=event.guide, external_userid=event.external_userid,
                action="transfer_failed", at=event.created_at, detail=event.reason[:128],
                inbox_id=inbox_id)
            bound = await self._current(s, tenant, event.external_userid, event.created_at)
            if bound is not None and bound.end_reason == "transfer_pending":
                assert bound.id is not None
                await repo.end_binding(s, binding_id=bound.id, at=None, reason="")

    async def record_transfer_done(self, s: AsyncSession, tenant: TenantSettings, *,
                                   handover: str, takeover: str, external_userid: str,
                                   at: datetime) -> None:
        """WeCom reports a transfer complete (transfer_result status 1), in the caller's
        transaction: the handover's relation ends as transferred, the takeover guide follows
        the customer and the binding moves to them, as the callbacks would have recorded it.
        WeCom's docs name the handover's DELETE_BY_TRANSFER for on-job transfers only, and no
        add event for the takeover (not in FACTS), so what the callbacks already recorded is
        kept and only what is missing is written. The takeover's relation is recorded as
        `transferred_in`, not as an add: the customer was not newly added."""
        await repo.ensure_customer(s, tenant=tenant.id, external_userid=external_userid)
        follows = {f.guide: f for f in await repo.list_follows(
            s, tenant=tenant.id, external_userid=external_userid)}
        old = follows.get(handover)
        if old is not None and old.status == "active":
            await repo.end_follow(s, tenant=tenant.id, guide=handover,
                                  external_userid=external_userid, status="transferred", at=at)
            await repo.add_follow_event(s, tenant=tenant.id, guide=handover,
                                        external_userid=external_userid, action="transferred",
                                        at=at)
        new = follows.get(takeover)
        if new is None or new.status != "active":
            await repo.ensure_guide(s, tenant=tenant.id, userid=takeover)
            await repo.upsert_follow(s, tenant=tenant.id, guide=takeover,
                                     external_userid=external_userid, status="active", state="",
                                     channel_code_id=None, at=at)
            await repo.add_follow_event(s, tenant=tenant.id, guide=takeover,
                                        external_userid=external_userid,
                                        action=TRANSFERRED_IN, at=at, detail=handover[:128])
        bound = await self._current(s, tenant, external_userid, at)
        if bound is not None and bound.guide == handover:
            assert bound.id is not None
            await repo.end_binding(s, binding_id=bound.id, at=at, reason="transferred")
            await repo.add_binding(s, tenant=tenant.id, external_userid=external_userid,
                                   guide=takeover, at=at)

    async def _end(self, s: AsyncSession, tenant: str, event: ev.ContactEvent, status: str,
                   inbox_id: int | None) -> None:
        await repo.ensure_guide(s, tenant=tenant, userid=event.guide)
        await repo.ensure_customer(s, tenant=tenant, external_userid=event.external_userid)
        found = await repo.end_follow(s, tenant=tenant, guide=event.guide,
                                      external_userid=event.external_userid, status=status,
                                      at=event.created_at)
        if not found:
            await repo.insert_ended_follow(s, tenant=tenant, guide=event.guide,
                                           external_userid=event.external_userid, status=status,
                                           at=event.created_at)
        await repo.add_follow_event(s, tenant=tenant, guide=event.guide,
                                    external_userid=event.external_userid, action=status,
                                    at=event.created_at, inbox_id=inbox_id)

    async def _current(self, s: AsyncSession, tenant: TenantSettings, external_userid: str,
                       at: datetime) -> repo.BindingRow | None:
        bindings = await repo.list_bindings(s, tenant=tenant.id, external_userid=external_userid)
        validity = tenant.commission.binding_validity_days
        valid = [b for b in bindings if rules.valid_at(as_period(b), at, validity)]
        return max(valid, key=lambda b: b.started_at) if valid else None

    async def _move_binding_on_transfer(self, s: AsyncSession, tenant: TenantSettings,
                                        event: ev.ContactDeletedByGuide) -> None:
        """The handover side of a completed transfer: the binding moves to the takeover guide.

        WeCom's docs do not say whether the takeover's add event comes before or after the
        handover's DELETE_BY_TRANSFER; both orders are handled.
        """
        bound = await self._current(s, tenant, event.external_userid, event.created_at)
        if bound is None or bound.guide != event.guide:
            return
        assert bound.id is not None
        follows = await repo.list_follows(s, tenant=tenant.id,
                                          external_userid=event.external_userid)
        takeover = [f for f in follows if f.guide != event.guide and f.status == "active"
                    and f.added_at >= event.created_at - TRANSFER_MATCH_WINDOW]
        if not takeover:
            await repo.end_binding(s, binding_id=bound.id, at=None, reason="transfer_pending")
            return
        newest = max(takeover, key=lambda f: f.added_at)
        await repo.end_binding(s, binding_id=bound.id, at=event.created_at, reason="transferred")
        await repo.add_binding(s, tenant=tenant.id, external_userid=event.external_userid,
                               guide=newest.guide, at=event.created_at)
