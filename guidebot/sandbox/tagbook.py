"""Creating and deleting corp customer tags (shared by add_corp_tag and the console route)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guidebot.sandbox import errors, ids, params
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, Tag, TagGroup
from guidebot.sandbox.tenant import TenantState

NAME_MAX_CHARS = 30  # FACTS §3.3: group/tag name ≤ 30 chars
ORDER_MAX = 2**32 - 1  # FACTS §3.3: order in [0, 2^32)


def create_tags(
    tenant: TenantState, body: Mapping[str, Any], now: float, *, by_app: bool = False
) -> tuple[TagGroup, list[Tag], bool]:
    """Add tags to a group (by group_id, or by group_name, creating the group if new).

    Returns the group, the new tags and whether the group was created. Nothing changes unless
    every name is valid. [mem] An existing group_name adds to that group (WeCom's doc says so;
    FACTS does not).
    """
    wanted = _wanted(body)
    group, created = _group(tenant, body, now, by_app)
    existing = {t.name for t in group.tags if not t.deleted}
    names = [name for name, _ in wanted]
    if existing.intersection(names) or len(set(names)) != len(names):
        raise ApiError(errors.TAG_NAME_EXISTS, "tag name already exists")
    new = [Tag(ids.tag_id(), name, int(now), order, by_app=by_app) for name, order in wanted]
    group.tags.extend(new)
    if created:
        tenant.tag_groups[group.group_id] = group
    return group, new, created


def _wanted(body: Mapping[str, Any]) -> list[tuple[str, int]]:
    raw = body.get("tag")
    if not isinstance(raw, list) or not raw or not all(isinstance(t, dict) for t in raw):
        raise ApiError(errors.INVALID_PARAM, "tag must be a non-empty list of {name, order}")
    return [
        (params.text(t, "name", required=True, max_chars=NAME_MAX_CHARS),
         params.integer(t, "order", 0, low=0, high=ORDER_MAX))
        for t in raw
    ]


def _group(tenant: TenantState, body: Mapping[str, Any], now: float,
           by_app: bool) -> tuple[TagGroup, bool]:
    group_id = params.text(body, "group_id")
    if group_id:
        group = tenant.tag_groups.get(group_id)
        if group is None or group.deleted:
            raise ApiError(errors.INVALID_TAG, f"invalid group_id {group_id}")
        return group, False
    name = params.text(body, "group_name", required=True, max_chars=NAME_MAX_CHARS)
    found = tenant.group_by_name(name)
    if found is not None:
        return found, False
    order = params.integer(body, "order", 0, low=0, high=ORDER_MAX)
    return TagGroup(ids.tag_id(), name, int(now), order, by_app=by_app), True


def delete_tag_or_group(tenant: TenantState, tag_or_group_id: str) -> None:
    """Mark a tag, or a whole group, deleted and take it off every customer."""
    group = tenant.tag_groups.get(tag_or_group_id)
    doomed = {t.id for t in group.tags} if group else {tag_or_group_id}
    for each in tenant.tag_groups.values():
        for tag in each.tags:
            tag.deleted = tag.deleted or tag.id in doomed
        # FACTS §3.3: deleting all tags of a group deletes the group
        each.deleted = each.deleted or all(t.deleted for t in each.tags)
    for follow in tenant.follows.values():
        follow.tag_ids = [t for t in follow.tag_ids if t not in doomed]


def edit(tenant: TenantState, body: Mapping[str, Any]) -> None:
    """edit_corp_tag: rename and/or reorder a live tag or group this app created. A new name
    must not be another live tag's of the same group (or another group's name): 40071."""
    target = params.text(body, "id", required=True)
    name = params.text(body, "name", max_chars=NAME_MAX_CHARS)
    group = tenant.tag_groups.get(target)
    if group is not None and not group.deleted:
        item: Tag | TagGroup = group
        taken = {g.group_name for g in tenant.tag_groups.values()
                 if not g.deleted and g is not group}
    else:
        group, tag = tenant.tag(target)
        item = tag
        taken = {t.name for t in group.tags if not t.deleted and t is not tag}
    if not item.by_app:
        raise ApiError(errors.TAG_NOT_CREATED_BY_APP)
    if name and name in taken:
        raise ApiError(errors.TAG_NAME_EXISTS, "tag name already exists")
    if "order" in body:
        item.order = params.integer(body, "order", 0, low=0, high=ORDER_MAX)
    if name and isinstance(item, TagGroup):
        item.group_name = name
    elif name and isinstance(item, Tag):
        item.name = name


def admin_edit(tenant: TenantState, body: Mapping[str, Any]) -> str:
    """An admin renames and/or reorders a live tag in the WeCom console (any tag, made by the
    app or not); a name another live tag of its group has is refused (40071). Returns the
    tag id."""
    group, tag = tenant.tag(params.text(body, "id", required=True))
    name = params.text(body, "name", max_chars=NAME_MAX_CHARS)
    if name and name in {t.name for t in group.tags if not t.deleted and t is not tag}:
        raise ApiError(errors.TAG_NAME_EXISTS, "tag name already exists")
    if "order" in body:
        tag.order = params.integer(body, "order", 0, low=0, high=ORDER_MAX)
    if name:
        tag.name = name
    return tag.id


def delete_by_app(tenant: TenantState, body: Mapping[str, Any]) -> None:
    """del_corp_tag: tags and whole groups; every id must be live (40068) and made by this app
    (301002), else nothing is deleted."""
    tag_ids = params.str_list(body, "tag_id")
    group_ids = params.str_list(body, "group_id")
    if not tag_ids and not group_ids:
        raise ApiError(errors.INVALID_PARAM, "tag_id and group_id are both empty")
    items: list[Tag | TagGroup] = [tenant.tag(t)[1] for t in tag_ids]
    for group_id in group_ids:
        group = tenant.tag_groups.get(group_id)
        if group is None or group.deleted:
            raise ApiError(errors.INVALID_TAG, f"invalid group_id {group_id}")
        items.append(group)
    if not all(item.by_app for item in items):
        raise ApiError(errors.TAG_NOT_CREATED_BY_APP)
    for doomed in tag_ids + group_ids:
        delete_tag_or_group(tenant, doomed)


def group_json(group: TagGroup, tags: list[Tag]) -> JSON:
    return {
        "group_id": group.group_id, "group_name": group.group_name,
        "create_time": group.create_time, "order": group.order, "deleted": group.deleted,
        "tag": [{"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order,
                 "deleted": t.deleted} for t in tags],
    }
