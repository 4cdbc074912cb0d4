"""A customer opts out (退订, TD, … in 微信客服): recorded once, every SOP enrolment of theirs
ended (and no SOP enrolls them again, see SopEngine.enroll), and the opt-out tag of
chat/opt_out.toml marked on each of their active relations through the outbox, so WeCom and
the guides see it. The confirmation itself is sent by intake like any reply.

HQ undoes an opt-out (the customer asked again, or it was a mistake): the record goes, the
tag comes off their active relations, and SOPs may enroll them again from their next trigger
(the enrolments ended by the opt-out stay ended). The tag that comes off is the one the
opt-out marked (its id is kept with the record), whatever chat/opt_out.toml names by then;
for a record kept before that (migration 0055) it is the tag the file names at the undo."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from guidebot.chat.customers import Writer
from guidebot.contacts.tags import TagService
from guidebot.db.engine import Database
from guidebot.db.repo import opt_outs as repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed, WeComError
from guidebot.sop.engine import SopEngine

log = logging.getLogger(__name__)

REASON = "opted_out"  # the enrolments' exit reason and the tag key's reason


class OptOuts:
    def __init__(self, db: Database, tags: TagService, sop: SopEngine, tag: Callable[[], str],
                 *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._tags = tags
        self._sop = sop
        self._tag_in_force = tag  # chat/opt_out.toml's tag as last (re)loaded; "": none
        self._clock = clock

    @property
    def _tag(self) -> str:
        return self._tag_in_force()

    async def opt_out(self, tenant: str, writer: Writer, msgid: str) -> str:
        """Apply the opt-out of the kf customer; a short account of what was done (no text)."""
        customer = writer.context.external_userid
        async with self._db.write() as s:
            new = await repo.record(s, tenant=tenant, external_userid=customer, msgid=msgid,
                                    at=self._clock())
            stored = await repo.get(s, tenant=tenant, external_userid=customer)
        ended = await self._sop.stop(tenant, customer, REASON)
        # The tag is marked once per opt-out (keyed by the message that made it): opting out
        # again marks nothing more, an opt-out after an undo marks the tag anew.
        occurrence = hashlib.sha256((stored.msgid if stored else msgid).encode()).hexdigest()
        tagged = (await self._mark(tenant, writer, occurrence[:12],
                                   stored.tag_id if stored else "") if writer.contact
                  else "not a contact")
        log.info("opt-out tenant=%s customer=%s new=%s enrolments ended=%s tag=%s", tenant,
                 customer, new, ended, tagged)
        return f"opted out{'' if new else ' again'}: {ended} SOP enrolment(s) ended, tag {tagged}"

    async def undo(self, tenant: str, external_userid: str, *, operator: str) -> str:
        """Forget the customer's opt-out; a short account of what was done."""
        async with self._db.write() as s:
            removed = await repo.remove(s, tenant=tenant, external_userid=external_userid)
        if removed is None:
            return "not opted out"
        untagged = await self._unmark(tenant, external_userid, removed.tag_id)
        log.info("opt-out undone tenant=%s customer=%s operator=%s tag=%s", tenant,
                 external_userid, operator, untagged)
        return f"opt-out undone, tag {untagged}"

    async def _unmark(self, tenant: str, external_userid: str, marked: str | None) -> str:
        """Take off the tag the opt-out marked (`marked`: its id; "" none; None a record
        kept before the id was, whose tag is taken to be the one configured now)."""
        if marked == "":
            return "none marked"
        if marked is None and not self._tag:
            return "none configured"
        async with self._db.read() as s:
            guides = await repo.active_guides(s, tenant=tenant, external_userid=external_userid)
        if not guides:
            return "not removed: no active relation"
        try:
            tag_id = marked or (await self._tags.resolve(tenant, [self._tag]))[0]
        except (ValidationFailed, WeComError) as exc:
            return f"not removed: {type(exc).__name__}"
        outcomes = []
        for guide in guides:
            try:
                outcome = await self._tags.mark(
                    tenant, key=f"mark_tag:opt_in:{uuid.uuid4().hex}", guide=guide,
                    external_userid=external_userid, add=[], remove=[tag_id])
            except WeComError as exc:
                return f"not removed: {type(exc).__name__}"
            outcomes.append(str(outcome.status))
        return f"{', '.join(outcomes)} on {len(guides)} relation(s)"

    async def _mark(self, tenant: str, writer: Writer, occurrence: str,
                    marked: str | None) -> str:
        """Mark the opt-out tag: the one this opt-out marked already (opted out again), else
        the one configured now, whose id is kept with the record for the undo."""
        if not marked and not self._tag:
            return "none configured"
        customer = writer.context.external_userid
        async with self._db.read() as s:
            guides = await repo.active_guides(s, tenant=tenant, external_userid=customer)
        if not guides:
            return "not applied: no active relation"
        if marked:
            tag_ids = [marked]
        else:
            try:
                tag_ids = await self._tags.resolve(tenant, [self._tag])
            except ValidationFailed:
                log.warning("opt-out tag tenant=%s is not in the tag library; declare it in "
                            "tags.toml", tenant)
                return "not applied: not in the tag library"
            except WeComError as exc:
                return f"not applied: errcode={exc.errcode}"
            async with self._db.write() as s:
                await repo.set_tag(s, tenant=tenant, external_userid=customer,
                                   tag_id=tag_ids[0])
        statuses = [await self._tags.apply(tenant, guide=guide, external_userid=customer,
                                           tag_ids=tag_ids, reason=f"{REASON}:{occurrence}")
                    for guide in guides]
        return f"{', '.join(str(s) for s in statuses)} on {len(guides)} relation(s)"
