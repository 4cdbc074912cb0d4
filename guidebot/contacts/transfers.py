"""Customer transfers (在职继承 / 离职继承): HQ moves a guide's customers to another guide, when
the guide leaves the company (resigned) or changes store or role (on-job).

A transfer is a batch: its customers are recorded first (queued), then asked of WeCom 100 at
a time through the outbox (FACTS-next §D: `external_userid` ≤ 100 per call), each chunk under
its own key so it is asked once. WeCom answers per customer: 0 means the transfer started and
completes by itself after 24 hours unless the customer refuses (on-job), anything else that it
did not start (the code is kept and shown). Waiting customers are asked after with
`transfer_result` (`check`, a periodic job): done, refused, takeover guide at its limit, or no
record. A customer done is moved here too (guidebot/contacts/relations.py
`record_transfer_done`): the relation, and the binding, go to the takeover guide, whatever
callbacks WeCom sent or did not send.

For a resigned guide, WeCom's unassigned list (`get_unassigned_list`) is the authority on
which customers are left to transfer; for an active guide, WeCom's list of their customers
(`externalcontact/list`) with the relations guidebot knows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from guidebot.app_quota import AppQuota, app_text
from guidebot.contacts.relations import RelationService
from guidebot.contacts.views import iso
from guidebot.content.chat import ChatContent
from guidebot.db.engine import Database
from guidebot.db.models_transfers import CustomerTransfer, TransferBatch
from guidebot.db.repo import console as console_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import transfers as repo
from guidebot.db.types import utcnow
from guidebot.errors import NoRelation, NotFound, ValidationFailed, WeComApiError, WeComError
from guidebot.outbox import Done, Executor, Outbox, Prepared
from guidebot.settings import Settings
from guidebot.wecom.client import WeComClient, answer_time

log = logging.getLogger(__name__)

KIND = "customer_transfer"  # the outbox kind
NOTIFY = "transfer_notify"  # the takeover guide's app message (an app message in metering)
NAMED = 10  # customers named in that message, at most
KINDS = ("on_job", "resigned")
CHUNK = 100  # FACTS-next §D: external_userid[≤100] per transfer_customer call
MAX_CUSTOMERS = 10_000  # one batch; a guide with more is transferred in several
MESSAGE_MAX = 200  # FACTS-next §D: transfer_success_msg ≤ 200 characters
TAKEOVER_AFTER = timedelta(hours=24)  # FACTS-next §D: completes by itself after 24 h
CHECK_EVERY = timedelta(hours=1)  # a pair with customers waiting is asked about this often
UNASSIGNED_PAGES = 100  # get_unassigned_list pages of 1,000 read at most (100,000 customers)
# transfer_result status → state (FACTS-next §D: 1 接替完毕, 2 等待接替, 3 客户拒绝,
# 4 接替成员客户达到上限, 5 无接替记录)
STATUS = {1: "done", 2: "waiting", 3: "refused", 4: "limit", 5: "none"}
# Top-level answers that refuse the whole call (FACTS-next §D: 40097 not resigned, 40098
# takeover not activated, 40130 same member; 40003/60111 an unknown userid, from memory as in
# web/api/contacts.py): the chunk's customers fail with that code, the call is not retried.
REFUSED_CALL = frozenset({40003, 40096, 40097, 40098, 40099, 40100, 40128, 40129, 40130,
                          40131, 60111})


@dataclass(frozen=True)
class Unassigned:
    """A resigned guide's customers WeCom has not reassigned yet."""

    handover: str
    customers: tuple[str, ...]
    dimission_at: datetime | None  # when the guide left, as WeCom reports it


class CustomerTransfers:
    def __init__(self, settings: Settings, db: Database, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], relations: RelationService, *,
                 content: ChatContent, quota: AppQuota) -> None:
        self._settings, self._db, self._outbox = settings, db, outbox
        self._client_for, self._relations = client_for, relations
        self._content, self._quota = content, quota

    async def start(self, tenant_id: str, *, kind: str, handover: str, takeover: str,
                    customers: Sequence[str] | None = None, message: str = "") -> int:
        """Record a batch and ask WeCom; the batch's id. `customers` None: all the handover
        guide's customers (on-job: the relations guidebot knows; resigned: WeCom's
        unassigned list). Refused with ValidationFailed, nothing recorded, when the guides
        or customers do not fit (the `code` names the reason for the console)."""
        tenant = self._settings.tenant(tenant_id)
        await self._check_guides(tenant.id, kind, handover, takeover, message)
        chosen = await self._customers(tenant.id, kind, handover, customers)
        async with self._db.write() as s:
            busy = await repo.in_transfer(s, tenant=tenant.id, external_userids=chosen)
            if busy:
                raise ValidationFailed(
                    f"customers: {len(busy)} already being transferred "
                    f"({', '.join(sorted(busy)[:5])})", code="transfer_busy", n=len(busy))
            batch_id = await repo.create_batch(s, tenant=tenant.id, kind=kind,
                                               handover=handover, takeover=takeover,
                                               message=message, customers=chosen)
            chunks = [chosen[i:i + CHUNK] for i in range(0, len(chosen), CHUNK)]
            payloads = {f"{KIND}:{batch_id}:{n}": {
                "batch": batch_id, "kind": kind, "handover": handover, "takeover": takeover,
                "external_userid": chunk, "message": message} for n, chunk in enumerate(chunks)}
            items = await self._outbox.register_many(
                s, tenant=tenant.id, rows=[(k, KIND, p) for k, p in payloads.items()])
        outcomes = await self._outbox.attempt_many([
            Prepared(items[key], tenant.id, KIND, _call(self.send, tenant.id, payload))
            for key, payload in payloads.items() if key in items], in_flight=2)
        log.info("transfer batch tenant=%s batch=%s kind=%s customers=%d calls=%s", tenant.id,
                 batch_id, kind, len(chosen), [o.status for o in outcomes])
        return batch_id

    async def _check_guides(self, tenant: str, kind: str, handover: str, takeover: str,
                            message: str) -> None:
        if kind not in KINDS:
            raise ValidationFailed(f"kind: one of {', '.join(KINDS)}", code="transfer_kind")
        if not handover:
            raise ValidationFailed("handover: required", code="transfer_handover_missing")
        if not takeover:
            raise ValidationFailed("takeover: required", code="transfer_takeover_missing")
        if handover == takeover:
            raise ValidationFailed("takeover: the same guide as the handover",
                                   code="transfer_same")
        if len(message) > MESSAGE_MAX:
            raise ValidationFailed(f"message: at most {MESSAGE_MAX} characters",
                                   code="transfer_message_long")
        if message and kind == "resigned":
            raise ValidationFailed("message: WeCom sends no message on a resigned transfer",
                                   code="transfer_message_resigned")
        async with self._db.read() as s:
            old = await contacts_repo.get_guide(s, tenant=tenant, userid=handover)
            new = await contacts_repo.get_guide(s, tenant=tenant, userid=takeover)
        if old is None and kind == "on_job":  # a leaver guidebot never saw may have customers
            raise ValidationFailed(f"handover: no guide {handover}",
                                   code="transfer_handover_unknown", guide=handover)
        if new is None:
            raise ValidationFailed(f"takeover: no guide {takeover}",
                                   code="transfer_takeover_unknown", guide=takeover)
        if not new.active:
            raise ValidationFailed(f"takeover: {takeover} has left or is disabled",
                                   code="transfer_takeover_inactive", guide=takeover)

    async def _customers(self, tenant: str, kind: str, handover: str,
                         customers: Sequence[str] | None) -> list[str]:
        if kind == "resigned":
            left = {u.handover: u for u in await self.unassigned(tenant)}.get(handover)
            theirs = set(left.customers) if left is not None else set()
        else:
            theirs = await self._followed_by(tenant, handover)
        if customers is None:
            chosen = sorted(theirs)
        else:
            chosen = sorted(set(customers))
            strangers = [c for c in chosen if c not in theirs]
            if strangers:
                raise ValidationFailed(
                    f"customers: {len(strangers)} not the handover guide's "
                    f"({', '.join(strangers[:5])})", code="transfer_not_theirs",
                    n=len(strangers))
        if not chosen:
            raise ValidationFailed("customers: the handover guide has none to transfer",
                                   code="transfer_none")
        if len(chosen) > MAX_CUSTOMERS:
            raise ValidationFailed(f"customers: at most {MAX_CUSTOMERS:,} in one transfer",
                                   code="transfer_too_many", n=MAX_CUSTOMERS)
        return chosen

    async def _followed_by(self, tenant: str, guide: str) -> set[str]:
        """An active guide's customers as WeCom lists them (externalcontact/list: those
        guidebot never saw added included), with the relations guidebot knows."""
        async with self._db.read() as s:
            known = set(await repo.following(s, tenant=tenant, guide=guide))
        try:
            listed = await self._client_for(tenant).list_external_contacts(guide)
        except NoRelation:  # 84061: WeCom knows no customer of this guide
            return known
        return known | {str(c) for c in listed.get("external_userid", [])}

    async def send(self, tenant: str, payload: dict[str, Any]) -> Done:
        """The outbox executor of kind "customer_transfer": one transfer_customer call (≤ 100
        customers), each customer's answer written with the call's end."""
        chunk = [str(c) for c in payload["external_userid"]]
        batch = int(payload["batch"])
        try:
            answer = await self._client_for(tenant).transfer_customer(
                resigned=payload["kind"] == "resigned", handover=payload["handover"],
                takeover=payload["takeover"], external_userids=chunk,
                message=payload.get("message", ""))
        except WeComApiError as exc:
            if exc.errcode not in REFUSED_CALL:
                raise
            return Done({"errcode": exc.errcode}, writes=[repo.started(
                batch_id=batch, external_userid=c, state="failed", errcode=exc.errcode,
                takeover_at=None) for c in chunk])
        codes = {str(c.get("external_userid")): int(c.get("errcode", 0))
                 for c in answer.get("customer", []) if isinstance(c, dict)}
        due = utcnow() + TAKEOVER_AFTER
        writes = []
        for customer in chunk:
            code = codes.get(customer)
            if code is None:  # WeCom did not answer for this one
                writes.append(repo.started(batch_id=batch, external_userid=customer,
                                           state="none", errcode=None, takeover_at=None))
            else:
                writes.append(repo.started(
                    batch_id=batch, external_userid=customer,
                    state="waiting" if code == 0 else "failed",
                    errcode=code or None, takeover_at=due if code == 0 else None))
        return Done({"customers": len(chunk), "started": sum(c == 0 for c in codes.values())},
                    writes=writes)

    async def check(self, tenant_id: str, *, now: datetime | None = None,
                    every: timedelta = CHECK_EVERY) -> int:
        """Ask WeCom how the waiting transfers stand (each handover → takeover pair at most
        once per `every`), record it and move the customers now done; how many are done."""
        tenant = self._settings.tenant(tenant_id)
        now = now or utcnow()
        async with self._db.read() as s:
            pairs = await repo.waiting_pairs(s, tenant=tenant.id, checked_before=now - every)
        moved = 0
        for pair in pairs:
            try:
                results = await self._results(tenant.id, pair)
            except WeComError as exc:  # this pair is asked again on the next pass
                log.warning("transfer check failed tenant=%s handover=%s takeover=%s "
                            "errcode=%s", tenant.id, pair.handover, pair.takeover, exc.errcode)
                continue
            async with self._db.write() as s:
                done = await repo.settle(s, tenant=tenant.id, pair=pair, results=results,
                                         now=now)
                for customer, at in done:
                    await self._relations.record_transfer_done(
                        s, tenant, handover=pair.handover, takeover=pair.takeover,
                        external_userid=customer, at=at)
            moved += len(done)
            if done:
                await self._tell_takeover(tenant.id, pair, [c for c, _ in done], now)
            log.info("transfer check tenant=%s kind=%s handover=%s takeover=%s asked=%d "
                     "done=%d", tenant.id, pair.kind, pair.handover, pair.takeover,
                     len(results), len(done))
        return moved

    async def _tell_takeover(self, tenant: str, pair: repo.Pair, customers: list[str],
                             now: datetime) -> None:
        """The takeover guide is told, by app message, whose customers are now theirs
        (chat/texts.toml `transfer_notice`), once per check that found them done."""
        async with self._db.read() as s:
            names = await contacts_repo.guide_names(s, tenant=tenant, userids=[pair.handover])
            people = await console_repo.customer_names(s, tenant=tenant,
                                                        external_userids=customers[:NAMED])
        shown = "、".join(people.get(c) or c for c in customers[:NAMED])
        if len(customers) > NAMED:
            shown += self._content.text("transfer_more", n=len(customers) - NAMED)
        text = self._content.text("transfer_notice", count=len(customers), customers=shown,
                                  handover=names[pair.handover][0] or pair.handover)
        key = f"{NOTIFY}:{pair.kind}:{pair.handover}:{pair.takeover}:{now.isoformat()}"
        await self._outbox.run(tenant=tenant, key=key[:160], kind=NOTIFY,
                               payload=app_text(pair.takeover, text), call=self.notify)

    async def notify(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "transfer_notify": message/send to the takeover
        guide, within their app message budget."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    async def _results(self, tenant: str, pair: repo.Pair
                       ) -> dict[str, tuple[str, datetime | None]]:
        client = self._client_for(tenant)
        found: dict[str, tuple[str, datetime | None]] = {}
        cursor = ""
        while True:
            page = await client.transfer_result(resigned=pair.kind == "resigned",
                                                handover=pair.handover,
                                                takeover=pair.takeover, cursor=cursor)
            for item in page.get("customer", []):
                state = STATUS.get(int(item.get("status", 0)))
                if state is not None:
                    found[str(item.get("external_userid"))] = (
                        state, answer_time(item.get("takeover_time")))
            cursor = str(page.get("next_cursor") or "")
            if not cursor:
                return found

    async def unassigned(self, tenant_id: str) -> list[Unassigned]:
        """Resigned guides' customers WeCom has not reassigned (get_unassigned_list, every
        page), per guide, the guide with most first."""
        client = self._client_for(self._settings.tenant(tenant_id).id)
        by_guide: dict[str, list[str]] = {}
        left: dict[str, datetime | None] = {}
        cursor = ""
        for _ in range(UNASSIGNED_PAGES):
            page = await client.get_unassigned_list(cursor=cursor)
            for item in page.get("info", []):
                guide = str(item.get("handover_userid", ""))
                by_guide.setdefault(guide, []).append(str(item.get("external_userid", "")))
                left[guide] = answer_time(item.get("dimission_time"))
            cursor = str(page.get("next_cursor") or "")
            if page.get("is_last", True) or not cursor:
                break
        return sorted((Unassigned(g, tuple(sorted(c)), left[g]) for g, c in by_guide.items()),
                      key=lambda u: (-len(u.customers), u.handover))

    async def batch(self, tenant_id: str, batch_id: int
                    ) -> tuple[TransferBatch, list[CustomerTransfer]]:
        """A batch and its customers; NotFound for another tenant's or none."""
        async with self._db.read() as s:
            found = await repo.batch(s, tenant=tenant_id, batch_id=batch_id)
            if found is None:
                raise NotFound(f"transfer: no transfer {batch_id}")
            return found, await repo.customers_of(s, tenant=tenant_id, batch_id=batch_id)

    async def batches(self, tenant_id: str, *, limit: int = 50,
                      before: int | None = None) -> list[repo.BatchSummary]:
        async with self._db.read() as s:
            return await repo.batches(s, tenant=tenant_id, limit=limit, before=before)

    async def view(self, tenant_id: str, batch_id: int) -> dict[str, Any]:
        """A batch as the API answers it, with each customer's state."""
        batch, rows = await self.batch(tenant_id, batch_id)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.state] = counts.get(row.state, 0) + 1
        return {**batch_json(batch, counts), "customer_list": [customer_json(r) for r in rows]}

    async def list_view(self, tenant_id: str, *, limit: int,
                        before: int | None) -> dict[str, Any]:
        """The newest batches as the API answers them; `next` continues as `before`."""
        rows = [batch_json(s.batch, s.counts)
                for s in await self.batches(tenant_id, limit=limit, before=before)]
        return {"transfers": rows, "next": rows[-1]["id"] if len(rows) == limit else None}

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send, NOTIFY: self.notify}


def batch_json(batch: TransferBatch, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": batch.id, "kind": batch.kind, "handover": batch.handover,
            "takeover": batch.takeover, "message": batch.message,
            "created_at": iso(batch.created_at), "customers": sum(counts.values()),
            "states": {state: counts.get(state, 0) for state in repo.STATES}}


def customer_json(row: CustomerTransfer) -> dict[str, Any]:
    return {"external_userid": row.external_userid, "state": row.state,
            "errcode": row.errcode, "takeover_at": iso(row.takeover_at),
            "checked_at": iso(row.checked_at)}


def _call(send: Executor, tenant: str, payload: dict[str, Any]) -> Callable[[], Any]:
    async def call() -> Any:
        return await send(tenant, payload)
    return call
