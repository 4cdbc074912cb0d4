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
    tenant: TenantState, body: Mapping[str, Any], now: float
) -> tuple[TagGroup, list[Tag], bool]:
    """Add tags to a group (by group_id, or by group_name, creating the group if new).

    Returns the group, the new tags and whether the group was created. Nothing changes unless
    every name is valid. [mem] An existing group_name adds to that group (WeCom's doc says so;
    FACTS does not).
    """
    wanted = _wanted(body)
    group, created = _group(tenant, body, now)
    existing = {t.name for t in group.tags if not t.deleted}
    names = [name for name, _ in wanted]
    if existing.intersection(names) or len(set(names)) != len(names):
        raise ApiError(errors.TAG_NAME_EXISTS, "tag name already exists")
    new = [Tag(ids.tag_id(), name, int(now), order) for name, order in wanted]
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


def _group(tenant: TenantState, body: Mapping[str, Any], now: float) -> tuple[TagGroup, bool]:
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
    return TagGroup(ids.tag_id(), name, int(now), order), True


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


def group_json(group: TagGroup, tags: list[Tag]) -> JSON:
    return {
        "group_id": group.group_id, "group_name": group.group_name,
        "create_time": group.create_time, "order": group.order, "deleted": group.deleted,
        "tag": [{"id": t.id, "name": t.name, "create_time": t.create_time, "order": t.order,
                 "deleted": t.deleted} for t in tags],
    }
