"""The corp tag library (mirrored from WeCom, seeded from tags.toml) and tags on customers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from guidebot import events as ev
from guidebot import inbox
from guidebot.contacts.profiles import remarks_of
from guidebot.contacts.relations import Relation
from guidebot.content.library import TagGroup
from guidebot.db.engine import Database
from guidebot.db.models import CorpTag
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import pretags as pretags_repo
from guidebot.db.repo import relation_tags
from guidebot.db.repo import sop_tasks as job_state
from guidebot.db.repo import tags as repo
from guidebot.db.types import utcnow
from guidebot.errors import TagNameTaken, ValidationFailed
from guidebot.outbox import Executor, Outbox, Outcome
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)



def _order(item: dict[str, Any]) -> int:
    try:
        return max(0, int(item.get("order") or 0))
    except (TypeError, ValueError):
        return 0


def mirror_rows(tenant: str, response: dict[str, Any]) -> list[CorpTag]:
    """The mirror's rows for a get_corp_tag_list / add_corp_tag answer's `tag_group`(s)."""
    rows = []
    groups = response.get("tag_group", [])
    for group in [groups] if isinstance(groups, dict) else groups:
        for tag in group.get("tag", []):
            rows.append(CorpTag(tenant=tenant, tag_id=str(tag["id"]), name=str(tag["name"]),
                                group_id=str(group.get("group_id", "")),
                                group_name=str(group.get("group_name", "")),
                                deleted=bool(tag.get("deleted") or group.get("deleted")),
                                tag_order=_order(tag), group_order=_order(group)))
    return rows


async def _create_tags(client: WeComClient, group: str, names: list[str]) -> None:
    with contextlib.suppress(TagNameTaken):  # another process created it first: fine
        await client.add_corp_tag(group_name=group, tags=names)


SWEEP_GUIDES = 100  # batch/get_by_user: userid_list ≤ 100 (FACTS §3)
SWEEP_PAGE = 100  # and limit ≤ 100
SWEEP_EVERY = timedelta(days=1)
SWEEP_CURSOR = "tag-sweep"  # sop_cursors: when the tenant's relations were last swept


class TagService:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient],
                 outbox: Outbox, declared: Sequence[TagGroup] = ()) -> None:
        self._declared = tuple(declared)
        self._sync_locks: dict[str, asyncio.Lock] = {}
        self._db = db
        self._client_for = client_for
        self._outbox = outbox
        self._mark_call = MarkTagCall(db, client_for)

    def executors(self) -> dict[str, Executor]:
        """For retries of this service's calls (the outbox's `calls`)."""
        return {"mark_tag": self._mark_call}

    async def sync(self, tenant: str) -> int:
        """Create tags declared in tags.toml but missing in WeCom; mirror the whole library
        (writing only what differs from the mirror)."""
        async with self._sync_locks.setdefault(tenant, asyncio.Lock()):
            return await self._sync(tenant)

    async def _sync(self, tenant: str) -> int:
        client = self._client_for(tenant)
        response = await client.get_corp_tag_list()
        declared = self._declared
        if declared:
            existing = {(t.group_name, t.name) for t in mirror_rows(tenant, response)
                        if not t.deleted}
            created = False
            for group in declared:
                missing = [t for t in group.tags if (group.name, t) not in existing]
                if missing:
                    await _create_tags(client, group.name, missing)
                    created = True
            if created:
                response = await client.get_corp_tag_list()
        rows = mirror_rows(tenant, response)
        async with self._db.write() as s:  # only the differences, in one transaction
            added, changed, deleted = await repo.apply_library(s, tenant=tenant, tags=rows)
        if added or changed or deleted:
            log.info("corp tag library synced tenant=%s added=%s changed=%s deleted=%s",
                     tenant, added, changed, deleted)
        return len([r for r in rows if not r.deleted])

    async def resolve(self, tenant: str, names: Sequence[str]) -> list[str]:
        """Tag ids for names, re-syncing once if one is unknown; ValidationFailed names it."""
        by_name = await self._by_name(tenant)
        if any(n not in by_name for n in names):
            await self.sync(tenant)
            by_name = await self._by_name(tenant)
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name)) or "(none)"
            raise ValidationFailed(f"unknown tag(s) {', '.join(unknown)}; known: {known}",
                                   code="tags_unknown", tags="、".join(unknown))
        return [by_name[n] for n in names]

    async def _by_name(self, tenant: str) -> dict[str, str]:
        async with self._db.read() as s:
            return {t.name: t.tag_id for t in await repo.list_library(s, tenant=tenant)}

    async def apply(self, tenant: str, *, guide: str, external_userid: str,
                    tag_ids: Sequence[str], reason: str) -> str:
        """mark_tag once per (reason, relation, tags); the executor mirrors it on success."""
        if not tag_ids:
            return "none"
        digest = hashlib.sha256("|".join(sorted(tag_ids)).encode()).hexdigest()[:16]
        key = f"mark_tag:{reason}:{guide}:{external_userid}:{digest}"
        payload = {"userid": guide, "external_userid": external_userid,
                   "add_tag": list(tag_ids), "remove_tag": [], "ref": key[:160]}
        outcome = await self._outbox.run(tenant=tenant, key=key[:160], kind="mark_tag",
                                         payload=payload, call=self._mark_call)
        return outcome.status

    async def mark(self, tenant: str, *, key: str, guide: str, external_userid: str,
                   add: Sequence[str], remove: Sequence[str], pretag: str = "") -> Outcome:
        """mark_tag with tag ids under the caller's key (once per key); `pretag`: the unionid
        of the 预打标签 it applies, recorded applied with the mirror when WeCom accepts it."""
        payload: dict[str, Any] = {"userid": guide, "external_userid": external_userid,
                                   "add_tag": list(add), "remove_tag": list(remove),
                                   "ref": key[:160]}
        if pretag:
            payload["pretag"] = pretag
        return await self._outbox.run(tenant=tenant, key=key[:160], kind="mark_tag",
                                      payload=payload, call=self._mark_call)

    async def apply_channel_tags(self, relation: Relation) -> str:
        """The tags a channel code names, on the relation its add made ("none" without)."""
        if relation.code is None or not relation.channel_tags:
            return "none"
        event = relation.event
        try:
            tag_ids = await self.resolve(event.tenant, list(relation.channel_tags))
        except ValidationFailed as exc:
            log.warning("channel code %s tags not applied tenant=%s: %s", relation.code.id,
                        event.tenant, exc)
            return "invalid"
        return await self.apply(event.tenant, guide=event.guide,
                                external_userid=event.external_userid, tag_ids=tag_ids,
                                reason=f"code{relation.code.id}")

    async def edit(self, tenant: str, *, guide: str, external_userid: str,
                   add: Sequence[str], remove: Sequence[str]) -> Outcome:
        """HQ marks/unmarks tags by name on one relation; mirrored locally when WeCom agrees."""
        if not add and not remove:
            raise ValidationFailed("give at least one tag to add or remove",
                                   code="tags_edit_empty")
        add_ids = await self.resolve(tenant, list(add))
        remove_ids = await self.resolve(tenant, list(remove))
        key = f"mark_tag:edit:{uuid.uuid4().hex}"
        payload = {"userid": guide, "external_userid": external_userid,
                   "add_tag": add_ids, "remove_tag": remove_ids, "ref": key}
        return await self._outbox.run(tenant=tenant, key=key,
                                      kind="mark_tag", payload=payload,
                                      call=self._mark_call)

    async def sweep_if_due(self, tenant: str, *, now: datetime | None = None) -> int | None:
        """The sweep, at most once per SWEEP_EVERY across processes and restarts (the last
        sweep's time is kept in the database) and in one process at a time (PostgreSQL
        advisory lock). None: not due, or another process is sweeping."""
        now = now or utcnow()
        async with job_state.singleton(self._db.engine, f"tag-sweep:{tenant}") as mine:
            if not mine:
                return None
            async with self._db.read() as s:
                last = await job_state.get_cursor(s, tenant=tenant, name=SWEEP_CURSOR)
            if last and now - datetime.fromisoformat(last) < SWEEP_EVERY:
                return None
            changed = await self.sweep(tenant)
            async with self._db.write() as s:
                await job_state.set_cursor(s, tenant=tenant, name=SWEEP_CURSOR,
                                           value=now.isoformat())
        return changed

    async def sweep(self, tenant: str) -> int:
        """Read every active relation's tags back from WeCom (batch/get_by_user: ≤ 100 guides
        and ≤ 100 relations a page, FACTS §3) and reconcile the relations whose mirror differs.
        A tag a guide set in the client raises only a detail-less edit_external_contact; when
        that one event is lost or deduped, this makes the change up (a daily job). Relations
        guidebot does not know as active are left alone. Returns how many changed."""
        async with self._db.read() as s:
            guides = await relation_tags.guides_with_relations(s, tenant=tenant)
            live = await relation_tags.live_tag_ids(s, tenant=tenant)
        changed = 0
        for start in range(0, len(guides), SWEEP_GUIDES):
            batch = guides[start:start + SWEEP_GUIDES]
            async with self._db.read() as s:
                mirrored = await relation_tags.mirrored_relations(s, tenant=tenant, guides=batch)
            cursor = ""
            while True:
                page = await self._client_for(tenant).batch_get_by_user(
                    batch, cursor=cursor, limit=SWEEP_PAGE)
                items = page.get("external_contact_list") or []
                await self._store_remarks(tenant, items)
                for item in items:
                    guide = str(item.get("follow_info", {}).get("userid", ""))
                    customer = str(item.get("external_contact", {}).get("external_userid", ""))
                    ids = {str(t) for t in item.get("follow_info", {}).get("tag_id") or []}
                    known = mirrored.get((guide, customer))
                    if known is None or (ids <= live and ids == known):
                        continue  # not a relation guidebot has, or nothing to change
                    added, removed = await self.reconcile(
                        tenant, guide=guide, external_userid=customer,
                        tags=[{"tag_id": t} for t in sorted(ids)])
                    changed += bool(added or removed)
                    if ids - live:  # reconcile synced the library: compare with it from now
                        async with self._db.read() as s:
                            live = await relation_tags.live_tag_ids(s, tenant=tenant)
                cursor = str(page.get("next_cursor") or "")
                if not cursor:
                    break
        log.info("relation tags swept tenant=%s guides=%s changed=%s", tenant, len(guides),
                 changed)
        return changed

    async def _store_remarks(self, tenant: str, items: Sequence[dict[str, Any]]) -> None:
        """The guides' remarks and descriptions a batch/get_by_user page returned."""
        rows = [(guide, str(item.get("external_contact", {}).get("external_userid", "")),
                 remark, description)
                for item in items
                for guide, remark, description in remarks_of([item.get("follow_info")])]
        async with self._db.write() as s:
            await contacts_repo.set_remarks(s, tenant=tenant, rows=rows)

    @property
    def declared(self) -> tuple[TagGroup, ...]:
        """The groups and tags tags.toml declares now (created at each sync if missing)."""
        return self._declared

    def declare(self, groups: Sequence[TagGroup]) -> None:
        """tags.toml as reloaded (content hot reload); the next sync creates what is new."""
        self._declared = tuple(groups)

    async def reconcile(self, tenant: str, *, guide: str, external_userid: str,
                        tags: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
        """Make the mirror of one relation's corp tags what WeCom says (`follow_user[].tags`
        of externalcontact/get, FACTS §3.2): tags a guide set or removed in the WeCom client,
        which raise only edit_external_contact without detail (FACTS §2). Added rows are new,
        so the tag scan sees them (tag_added triggers and exits). Returns (added, removed).

        Only tags with a tag_id in the corp tag library are mirrored: FACTS does not say what
        `type` means; personal tags have no id there ([mem]), rule-group tags are not in
        get_corp_tag_list. An id the mirror does not know yet triggers one library sync."""
        ids = {str(t["tag_id"]) for t in tags if isinstance(t, dict) and t.get("tag_id")}
        async with self._db.read() as s:
            known = await relation_tags.known_tag_ids(s, tenant=tenant, tag_ids=ids)
        if ids - known:
            await self.sync(tenant)
            async with self._db.read() as s:
                known = await relation_tags.known_tag_ids(s, tenant=tenant, tag_ids=ids)
        async with self._db.write() as s:
            await contacts_repo.ensure_customer(s, tenant=tenant, external_userid=external_userid)
            mirrored = await relation_tags.relation_tag_ids(
                s, tenant=tenant, external_userid=external_userid, guide=guide)
            added, removed = sorted(known - mirrored), sorted(mirrored - known)
            await repo.add_customer_tags(s, tenant=tenant, guide=guide,
                                         external_userid=external_userid, tag_ids=added)
            if removed:
                await repo.remove_customer_tags(s, tenant=tenant, guide=guide,
                                                external_userid=external_userid,
                                                tag_ids=removed)
        if added or removed:
            log.info("tags reconciled tenant=%s guide=%s customer=%s added=%s removed=%s",
                     tenant, guide, external_userid, len(added), len(removed))
        return added, removed


class MarkTagCall:
    """The outbox executor of `mark_tag`: the call, then its local mirror (WeCom raises no
    callback for API edits), and for a 预打标签's mark (`pretag`: its unionid) the pre-tag
    recorded applied in the same transaction, whether the first attempt or a retry made it."""

    def __init__(self, db: Database, client_for: Callable[[str], WeComClient]) -> None:
        self._db = db
        self._client_for = client_for

    async def __call__(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        result = await self._client_for(tenant).mark_tag(
            userid=payload["userid"], external_userid=payload["external_userid"],
            add_tag=payload.get("add_tag", []), remove_tag=payload.get("remove_tag", []))
        added = list(payload.get("add_tag", []))
        async with self._db.write() as s:
            await repo.add_customer_tags(s, tenant=tenant, guide=payload["userid"],
                                         external_userid=payload["external_userid"],
                                         tag_ids=added)
            if payload.get("pretag"):
                for tag_id in added:
                    await pretags_repo.mark_applied(
                        s, tenant=tenant, unionid=str(payload["pretag"]), tag_id=tag_id,
                        guide=payload["userid"], external_userid=payload["external_userid"],
                        key=str(payload.get("ref") or ""), at=utcnow())
            if payload.get("remove_tag"):
                await repo.remove_customer_tags(s, tenant=tenant, guide=payload["userid"],
                                                external_userid=payload["external_userid"],
                                                tag_ids=payload["remove_tag"])
            if added:  # the SOP tag triggers hear of it once, with the mirror's commit
                names = await repo.tag_names(s, tenant=tenant, tag_ids=added)
                ref = str(payload.get("ref") or hashlib.sha256(
                    json.dumps(payload, sort_keys=True).encode()).hexdigest())
                await inbox.stage(s, key=f"tags_marked:{ref}", event=ev.TagsMarked(
                    tenant=tenant, created_at=utcnow(), ref=ref,
                    external_userid=payload["external_userid"], guide=payload["userid"],
                    tags=tuple(names)))
        return result
