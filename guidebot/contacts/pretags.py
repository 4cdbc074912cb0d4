"""预打标签: HQ knows customers by WeChat unionid (its CRM, its mini program) before they add a
guide, and gives them corp tags ahead (the admin API's `POST /pretags`). When a customer with
that unionid adds a guide, the add's follow-up (handlers/contacts.py), once the profile is
stored, marks the pending tags through that guide; a customer guidebot already knows with the
unionid who follows a guide at import time is marked at once, through their exclusive guide
when they follow them, else the relation begun last.

WeCom gives a customer's unionid (externalcontact/get's external_contact.unionid) only when the
corp has bound a WeChat Open Platform account; without it no pre-tag is ever applied.

Each tag is its own mark_tag under the outbox key `pretag:<customer>:<tag id>` (once per
customer and tag, whichever guide), through TagService.mark, so the mirror is written and a
TagsMarked event raises the SOP `tag_added` triggers like any mark. A pre-tag handed to the
outbox is being marked (`marking`) until WeCom accepts the mark: the mark_tag executor records
it applied (when, through which guide) in the transaction that writes the mirror, whether the
first attempt or an outbox retry made it; while that outbox row is dead (or expired) the
pre-tag is `failed`, with the row's error, until HQ puts the row back (the console's outbox
retry). A pending pre-tag whose tag was deleted from the library since is `tag_deleted`: never
marked, and not "pending" to the add's probe.

An import marks the customers it finds already following a guide at once, up to
IMPORT_MARKS marks, so the request stays short; a job (every minute, `apply_known`) marks the
rest, and any a concurrent add or another process left, MARKS_PER_PASS at a time. An add looks
for pre-tags only while the tenant has some pending (checked at most every PENDING_TTL_S per
process; an import in this process checks again at once), so a tenant without pre-tags pays
nothing per add; a customer added in that window is marked by the job."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guidebot.contacts.auto_tags import mark_key
from guidebot.contacts.relations import exclusive_guide
from guidebot.contacts.tags import TagService
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import outbox as outbox_repo
from guidebot.db.repo import pretags as repo
from guidebot.db.repo import relation_tags
from guidebot.db.repo import tags as tags_repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.outbox import CallStatus
from guidebot.settings import Settings

log = logging.getLogger(__name__)

UNIONID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
TAG_CHARS = 64

PREFIX = "pretag"
MAX_LINES = 10_000
MAX_TAGS = 20  # per line
IMPORT_MARKS = 200  # mark_tag calls an import makes itself; the job makes the rest
MARKS_PER_PASS = 2_000  # mark_tag calls the job makes per tenant and pass
PENDING_TTL_S = 30.0  # how long an add trusts "this tenant has no pending pre-tags"
# a pre-tag handed to the outbox, by what its mark_tag came to (or its row's state)
STATE_OF = {CallStatus.DONE: "applied", CallStatus.DEAD: "failed",
            CallStatus.EXPIRED: "failed"}  # else (sending, failed: retried) "marking"


@dataclass(frozen=True)
class Line:
    unionid: str
    tags: tuple[str, ...]  # corp tag names or ids
    number: int = 0  # its line in an uploaded file (refusals name it), else its place + 1


def read_csv(text: str) -> list[Line]:
    """The console's upload: `unionid,tags` a line, tags separated by `|`; an optional header
    line starting with `unionid`; blank lines skipped. A line that cannot be read refuses the
    whole file naming its line number (nothing stored)."""
    lines: list[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        row = raw.strip().lstrip("\ufeff")
        if not row or (number == 1 and row.lower().startswith("unionid")):
            continue
        unionid, _, joined = (part.strip() for part in row.partition(","))
        tags = tuple(t.strip().strip('"') for t in joined.strip('"').split("|") if t.strip())
        if (not UNIONID.fullmatch(unionid) or not tags or len(tags) > MAX_TAGS
                or any(len(t) > TAG_CHARS or not t.isprintable() for t in tags)):
            raise ValidationFailed(f"line {number}: not `unionid,tag|tag`",
                                   code="pretags_line_bad", line=str(number))
        lines.append(Line(unionid, tags, number))
        if len(lines) > MAX_LINES:
            raise ValidationFailed(f"more than {MAX_LINES} lines", code="pretags_too_many",
                                   max=str(MAX_LINES))
    if not lines:
        raise ValidationFailed("no lines", code="pretags_empty")
    return lines


def nothing_new(result: dict[str, Any]) -> bool:
    """An import (`submit`'s answer) that stored no new pre-tag and marked none: every line
    was imported before and nothing was left to mark, so nothing changed."""
    return not any(result[k] for k in ("stored", "applied", "marking", "failed"))


class PreTags:
    def __init__(self, settings: Settings, db: Database, tags: TagService) -> None:
        self._settings, self._db, self._tags = settings, db, tags
        self._none_pending: dict[str, float] = {}  # tenant → when it was seen to have none
        self.import_marks = IMPORT_MARKS  # mark_tag calls an import makes itself

    async def _library(self, tenant: str, refs: set[str]) -> dict[str, str]:
        """name or id → tag id of the live library, synced once if a ref is unknown."""
        for attempt in range(2):
            async with self._db.read() as s:
                rows = await tags_repo.list_library(s, tenant=tenant)
            known = {t.tag_id: t.tag_id for t in rows} | {t.name: t.tag_id for t in rows}
            if refs <= set(known) or attempt:
                return known
            await self._tags.sync(tenant)
        return known  # pragma: no cover

    async def submit(self, tenant: str, lines: Sequence[Line]) -> dict[str, Any]:
        """Store every line's tags, or nothing: a tag the library does not have refuses the
        whole request naming the line (`lines.<n>.tags`, from 0). Customers already known
        by the unionid and following a guide are marked now."""
        known = await self._library(tenant, {t for line in lines for t in line.tags})
        pairs: list[tuple[str, str]] = []
        for n, line in enumerate(lines):
            unknown = [t for t in line.tags if t not in known]
            if unknown:
                raise ValidationFailed(f"lines.{n}.tags: not in the corp tag library: "
                                       f"{', '.join(unknown)}", code="pretags_tag_unknown",
                                       line=str(line.number or n + 1),
                                       tags="、".join(unknown))
            pairs.extend((line.unionid, known[t]) for t in line.tags)
        import_id = uuid.uuid4().hex
        async with self._db.write() as s:
            stored = await repo.add_missing(s, tenant=tenant, import_id=import_id,
                                            pairs=pairs, now=utcnow())
            customers = await repo.customers_of(s, tenant=tenant,
                                                unionids=[u for u, _ in pairs])
        self._none_pending.pop(tenant, None)
        marked = await self._apply_to(tenant, sorted(customers.items()), self.import_marks)
        log.info("pretags imported tenant=%s import=%s lines=%s stored=%s marked=%s",
                 tenant, import_id, len(lines), stored, dict(marked))
        return {"import_id": import_id, "lines": len(lines), "stored": stored,
                "applied": marked["applied"], "marking": marked["marking"],
                "failed": marked["failed"]}

    async def on_added(self, tenant: str, *, guide: str, external_userid: str) -> int:
        """After the add's profile is stored: the pending tags of the customer's unionid,
        marked through the guide they added. How many were marked."""
        seen_none = self._none_pending.get(tenant)
        if seen_none is not None and time.monotonic() - seen_none < PENDING_TTL_S:
            return 0
        async with self._db.read() as s:
            if not await repo.any_pending(s, tenant=tenant):
                self._none_pending[tenant] = time.monotonic()
                return 0
            customer = await contacts_repo.get_customer(s, tenant=tenant,
                                                        external_userid=external_userid)
        if customer is None or not customer.unionid:
            return 0
        return (await self._apply(tenant, customer.unionid, external_userid, guide)).total()

    async def apply_known(self, tenant: str, budget: int = MARKS_PER_PASS) -> int:
        """The job: pending pre-tags of customers guidebot knows by the unionid who follow a
        guide, marked through their guide, at most about `budget` marks. How many."""
        async with self._db.read() as s:
            due = await repo.due_known(s, tenant=tenant, limit=budget)
        marked = await self._apply_to(tenant, due, budget)
        if marked:
            log.info("pretags marked by the job tenant=%s marked=%s", tenant, dict(marked))
        return marked.total()

    async def _apply_to(self, tenant: str, customers: Sequence[tuple[str, str]],
                        budget: int) -> Counter[str]:
        """(unionid, customer) pairs marked through their guide until about `budget` marks
        were made (a customer's tags are never split); the rest wait for the job. The marks
        by the state they left their pre-tags in."""
        marked: Counter[str] = Counter()
        for unionid, customer in customers:
            if marked.total() >= budget:
                break
            guide = await self._guide(tenant, customer)
            if guide is not None:
                marked += await self._apply(tenant, unionid, customer, guide)
        return marked

    async def _apply(self, tenant: str, unionid: str, customer: str,
                     guide: str) -> Counter[str]:
        """The unionid's pending tags handed to the outbox, each its own mark; the marks by
        the state they left their pre-tags in (applied, marking, failed)."""
        async with self._db.read() as s:
            pending = await repo.pending_of(s, tenant=tenant, unionid=unionid)
            live = await relation_tags.live_tag_ids(s, tenant=tenant)
        marked: Counter[str] = Counter()
        for tag_id in pending:
            if tag_id not in live:  # deleted from the library since: tag_deleted, not marked
                continue
            key = mark_key(customer, tag_id, PREFIX)
            outcome = await self._tags.mark(tenant, key=key, guide=guide,
                                            external_userid=customer, add=[tag_id], remove=[],
                                            pretag=unionid)
            marked[await self._handed(tenant, unionid, tag_id, customer, guide, key,
                                      outcome.status)] += 1
        if pending:
            log.info("pretags handed over tenant=%s customer=%s guide=%s marked=%s of %s",
                     tenant, customer, guide, dict(marked), len(pending))
        return marked

    async def _handed(self, tenant: str, unionid: str, tag_id: str, customer: str,
                      guide: str, key: str, status: CallStatus) -> str:
        """Record the pre-tag as the outbox row `key`'s; its state now. A done mark was
        recorded applied by the executor; a duplicate key's row owns the call (another
        process's, or a mark made before this pre-tag was stored: done, it applied it)."""
        if status is CallStatus.DONE:
            return STATE_OF[status]
        done_by = guide
        if status is CallStatus.DUPLICATE:
            async with self._db.read() as s:
                row = await outbox_repo.get_by_key(s, tenant=tenant, key=key)
            status = CallStatus(row.status) if row is not None else CallStatus.SENDING
            if row is not None and status is CallStatus.DONE:
                done_by = str(json.loads(row.payload).get("userid") or guide)
        async with self._db.write() as s:
            if status is CallStatus.DONE:
                await repo.mark_applied(s, tenant=tenant, unionid=unionid, tag_id=tag_id,
                                        guide=done_by, external_userid=customer, key=key,
                                        at=utcnow())
            else:
                await repo.mark_handed(s, tenant=tenant, unionid=unionid, tag_id=tag_id,
                                       guide=guide, external_userid=customer, key=key)
        return STATE_OF.get(status, "marking")

    async def _guide(self, tenant: str, customer: str) -> str | None:
        """The exclusive guide the customer follows, else the relation begun last."""
        async with self._db.read() as s:
            follows = await contacts_repo.list_follows(s, tenant=tenant,
                                                       external_userid=customer)
            bindings = await contacts_repo.list_bindings(s, tenant=tenant,
                                                         external_userid=customer)
        active = [f for f in follows if f.status == "active"]
        exclusive = exclusive_guide(bindings, utcnow(), self._settings.tenant(tenant))
        if exclusive in {f.guide for f in active}:
            return exclusive
        return max(active, key=lambda f: (f.added_at, f.guide)).guide if active else None

    async def listed(self, tenant: str, *, status: str | None, after: str, limit: int,
                     import_id: str | None = None) -> dict[str, Any]:
        """A page by unionid then tag id; `after` is the previous page's `next`
        ("<unionid>,<tag id>"), "" for the first; the counts are the tenant's, or the
        import's with `import_id`."""
        async with self._db.read() as s:
            unionid, _, tag_id = after.partition(",")
            rows = await repo.listed(s, tenant=tenant, status=status, after=(unionid, tag_id),
                                     limit=limit, import_id=import_id)
            by_id = {t.tag_id: t.name for t in await tags_repo.list_library(s, tenant=tenant)}
            counts = await repo.counts(s, tenant=tenant, import_id=import_id)
        last = rows[-1][0] if rows else None
        return {"items": [{"unionid": r.unionid, "tag_id": r.tag_id,
                           "tag": by_id.get(r.tag_id),  # None: no longer in the library
                           "status": state,
                           # the outbox's last error of a mark failed or being retried
                           "error": (error or None) if state in ("marking", "failed") else None,
                           "import_id": r.import_id, "created_at": r.created_at.isoformat(),
                           "applied_at": r.applied_at.isoformat() if r.applied_at else None,
                           "guide": r.guide or None,
                           "external_userid": r.external_userid or None}
                          for r, state, error in rows],
                "next": (f"{last.unionid},{last.tag_id}"
                         if last is not None and len(rows) == limit else None),
                **counts}

    async def summary(self, tenant: str, import_id: str | None = None) -> dict[str, int]:
        async with self._db.read() as s:
            return await repo.counts(s, tenant=tenant, import_id=import_id)

    async def delete(self, tenant: str, unionid: str) -> int:
        """Forget the unionid's pre-tags not handed to the outbox yet (pending or of a deleted
        tag); ones being marked, failed or applied are the outbox's, kept."""
        async with self._db.write() as s:
            return await repo.delete_pending(s, tenant=tenant, unionid=unionid)
