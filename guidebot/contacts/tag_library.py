"""标签管理: HQ lists, adds, renames, reorders and deletes the corp tag library's tags and
groups. WeCom is asked first (add_corp_tag, edit_corp_tag, del_corp_tag); the local mirror
changes only when it agrees, since WeCom raises no change_external_tag for the app's own edits
(assumed, not documented: as for mark_tag). A refusal changes nothing here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from guidebot.contacts.tags import TagService, mirror_rows
from guidebot.db.engine import Database
from guidebot.db.models import CorpTag
from guidebot.db.repo import tags as repo
from guidebot.errors import NotFound, TagNameTaken, TagNotOurs, ValidationFailed, WeComError
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

NAME_MAX = 30  # FACTS §3.3: a tag or group name is at most 30 characters
ORDER_MAX = 2**32 - 1  # FACTS §3.3: order in [0, 2^32)


class WeComRefused(ValidationFailed):
    """WeCom refused a library edit (nothing changed locally); the API answers it 502 with
    `params["errcode"]`."""


def _refused(api: str, exc: WeComError) -> WeComRefused:
    said = f"WeCom refused {api}: errcode {exc.errcode}"
    if isinstance(exc, TagNotOurs):
        return WeComRefused(f"{said} (only tags and groups this app created can be changed or "
                            "deleted)", code="tags_not_ours", errcode=exc.errcode, api=api)
    if isinstance(exc, TagNameTaken):
        return WeComRefused(f"{said} (the name is taken)", code="tags_name_taken_wecom",
                            errcode=exc.errcode, api=api)
    return WeComRefused(said, code="tags_wecom", errcode=exc.errcode, api=api)


@dataclass(frozen=True)
class NewTag:
    name: str
    order: int | None = None


def _name(raw: str, field: str, taken: set[str]) -> str:
    name = raw.strip()
    if not name:
        raise ValidationFailed(f"{field}: a name is required", code="tag_name_empty")
    if len(name) > NAME_MAX:
        raise ValidationFailed(f"{field}: at most {NAME_MAX} characters",
                               code="tag_name_long", name=name, max=NAME_MAX)
    if name in taken and field == "group_name":
        raise ValidationFailed(f"{field}: a group {name!r} exists; add to it by group_id",
                               code="tag_group_taken", name=name)
    if name in taken:
        raise ValidationFailed(f"{field}: {name!r} is already in this group",
                               code="tag_name_taken", name=name)
    return name


def _tag_view(tag: CorpTag, customers: int, declared: bool) -> dict[str, Any]:
    return {"id": tag.tag_id, "name": tag.name, "order": tag.tag_order, "customers": customers,
            "declared": declared}


class TagLibrary:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient],
                 tags: TagService) -> None:
        self._db = db
        self._client_for = client_for
        self._tags = tags

    async def groups(self, tenant: str) -> list[dict[str, Any]]:
        """The live groups with their tags (WeCom's order) and the customers carrying each."""
        async with self._db.read() as s:
            rows = await repo.library_with_counts(s, tenant=tenant)
        groups: dict[str, dict[str, Any]] = {}
        for tag, customers in rows:
            group = groups.setdefault(tag.group_id, {
                "group_id": tag.group_id, "group_name": tag.group_name,
                "order": tag.group_order, "declared": self._declared_group(tag.group_name),
                "tags": []})
            group["tags"].append(_tag_view(tag, customers, self._declared(tag)))
        return list(groups.values())

    def _declared_group(self, group_name: str) -> bool:
        return any(g.name == group_name for g in self._tags.declared)

    def _declared(self, tag: CorpTag) -> bool:
        return any(g.name == tag.group_name and tag.name in g.tags for g in self._tags.declared)

    async def create(self, tenant: str, tags: Sequence[NewTag], *, group_id: str = "",
                     group_name: str = "", group_order: int | None = None) -> dict[str, Any]:
        """New tags in the group `group_id`, or in a new group named `group_name`."""
        async with self._db.read() as s:
            if group_id:
                siblings = await repo.live_tags(s, tenant=tenant, group_id=group_id)
                if not siblings:
                    raise NotFound(f"group_id: no tag group {group_id}",
                                   code="tag_group_unknown", group_id=group_id)
                group_name = siblings[0].group_name
            else:
                existing = {t.group_name for t in await repo.list_library(s, tenant=tenant)}
                group_name = _name(group_name, "group_name", existing)
                siblings = []
        if not tags:
            raise ValidationFailed("tags: give at least one tag", code="tag_name_empty")
        taken = {t.name for t in siblings}
        names = []
        for i, tag in enumerate(tags):
            names.append(_name(tag.name, f"tags.{i}.name", taken))
            taken.add(names[-1])
        orders = [t.order or 0 for t in tags] if any(t.order is not None for t in tags) else None
        try:
            answer = await self._client_for(tenant).add_corp_tag(
                group_name=group_name, tags=names, group_id=group_id or None, orders=orders,
                group_order=None if group_id else group_order)
        except WeComError as exc:
            raise _refused("add_corp_tag", exc) from None
        rows = mirror_rows(tenant, answer)
        async with self._db.write() as s:
            await repo.upsert_tags(s, tenant=tenant, tags=rows)
        log.info("corp tags added tenant=%s group=%s tags=%s", tenant,
                 rows[0].group_id if rows else group_id, len(rows))
        first = rows[0] if rows else None
        return {"group_id": first.group_id if first else group_id,
                "group_name": first.group_name if first else group_name,
                "order": first.group_order if first else 0,
                "declared": self._declared_group(group_name),
                "tags": [_tag_view(t, 0, self._declared(t)) for t in rows]}

    async def _live(self, tenant: str, tag_id: str) -> CorpTag:
        async with self._db.read() as s:
            found = await repo.live_tags(s, tenant=tenant, tag_id=tag_id)
        if not found:
            raise NotFound(f"tag_id: no tag {tag_id}", code="tag_unknown", tag_id=tag_id)
        return found[0]

    def _not_declared(self, tag: CorpTag, field: str = "tag_id") -> None:
        if self._declared(tag):
            raise ValidationFailed(
                f"{field}: {tag.name!r} is declared in content_library/tags.toml, which would "
                "create it again at the next sync; change the file instead",
                code="tag_declared", name=tag.name)

    async def edit(self, tenant: str, tag_id: str, *, name: str | None = None,
                   order: int | None = None) -> dict[str, Any]:
        """Rename and/or reorder one tag."""
        tag = await self._live(tenant, tag_id)
        if name is None and order is None:
            raise ValidationFailed("name: give a new name or order", code="tag_name_empty")
        self._not_declared(tag)
        if name is not None:
            async with self._db.read() as s:
                siblings = await repo.live_tags(s, tenant=tenant, group_id=tag.group_id)
            name = _name(name, "name", {t.name for t in siblings if t.tag_id != tag_id})
        try:
            await self._client_for(tenant).edit_corp_tag(tag_id, name=name, order=order)
        except WeComError as exc:
            raise _refused("edit_corp_tag", exc) from None
        async with self._db.write() as s:
            await repo.edit_tag(s, tenant=tenant, tag_id=tag_id, name=name, order=order)
        log.info("corp tag edited tenant=%s tag=%s", tenant, tag_id)
        return await self._view(tenant, tag_id)

    async def _view(self, tenant: str, tag_id: str) -> dict[str, Any]:
        for group in await self.groups(tenant):
            for tag in group["tags"]:
                if tag["id"] == tag_id:
                    return {**tag, "group_id": group["group_id"],
                            "group_name": group["group_name"]}
        raise NotFound(f"tag_id: no tag {tag_id}", code="tag_unknown", tag_id=tag_id)

    async def delete(self, tenant: str, tag_id: str) -> dict[str, Any]:
        """Delete one tag (WeCom takes it off every customer; a group left without tags goes
        too)."""
        tag = await self._live(tenant, tag_id)
        self._not_declared(tag)
        try:
            await self._client_for(tenant).del_corp_tag(tag_ids=[tag_id])
        except WeComError as exc:
            raise _refused("del_corp_tag", exc) from None
        async with self._db.write() as s:
            await repo.delete_tags(s, tenant=tenant, tag_ids=[tag_id])
        log.info("corp tag deleted tenant=%s tag=%s", tenant, tag_id)
        return {"id": tag_id, "name": tag.name, "deleted": True}

    async def delete_group(self, tenant: str, group_id: str) -> dict[str, Any]:
        """Delete a group and every tag in it."""
        async with self._db.read() as s:
            tags = await repo.live_tags(s, tenant=tenant, group_id=group_id)
        if not tags:
            raise NotFound(f"group_id: no tag group {group_id}", code="tag_group_unknown",
                           group_id=group_id)
        for tag in tags:
            self._not_declared(tag, "group_id")
        try:
            await self._client_for(tenant).del_corp_tag(group_ids=[group_id])
        except WeComError as exc:
            raise _refused("del_corp_tag", exc) from None
        async with self._db.write() as s:
            await repo.delete_tags(s, tenant=tenant, tag_ids=[t.tag_id for t in tags])
        log.info("corp tag group deleted tenant=%s group=%s tags=%s", tenant, group_id,
                 len(tags))
        return {"id": group_id, "name": tags[0].group_name, "deleted": True}
