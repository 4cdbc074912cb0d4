"""Corp tag APIs: get_corp_tag_list, add_corp_tag, edit_corp_tag, del_corp_tag, mark_tag.

The three library edits raise no change_external_tag callback (as mark_tag: FACTS §1.1 says an
API edit raises none; for the library edits this is assumed, not documented); tags made in
the console (POST /_sandbox/{t}/tags) do. Tags the app did not create (the console's) cannot be
edited or deleted through the API: 301002 (assumed, not documented)."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, params, tagbook
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

log = logging.getLogger(__name__)


def get_corp_tag_list(call: ApiCall) -> JSON:
    """FACTS §3.3: no filter → all; group_id filters (tag_id then ignored); else tag_id.

    Deleted tags and groups are left out; unknown ids simply match nothing (not in FACTS).
    """
    group_ids = set(params.str_list(call.body, "group_id"))
    tag_ids = set(params.str_list(call.body, "tag_id"))
    groups = sorted((g for g in call.tenant.tag_groups.values() if not g.deleted),
                    key=lambda g: -g.order)
    found = []
    for group in groups:
        tags = sorted((t for t in group.tags if not t.deleted), key=lambda t: -t.order)
        if group_ids and group.group_id not in group_ids:
            continue
        if tag_ids and not group_ids:
            tags = [t for t in tags if t.id in tag_ids]
            if not tags:
                continue
        found.append(tagbook.group_json(group, tags))
    return ok(tag_group=found)


def add_corp_tag(call: ApiCall) -> JSON:
    group, new, _ = tagbook.create_tags(call.tenant, call.body, call.now, by_app=True)
    log.info("tenant %s: %d corp tag(s) added by API", call.tenant.id, len(new))
    return ok(tag_group=tagbook.group_json(group, new))


def edit_corp_tag(call: ApiCall) -> JSON:
    tagbook.edit(call.tenant, call.body)
    return ok()


def del_corp_tag(call: ApiCall) -> JSON:
    tagbook.delete_by_app(call.tenant, call.body)
    return ok()


def mark_tag(call: ApiCall) -> JSON:
    """Edit a follow's tags. FACTS §1.1/§3.3: an API edit raises no callback."""
    userid = call.tenant.member(params.text(call.body, "userid", required=True))
    external_userid = params.text(
        call.body, "external_userid", required=True, missing=errors.MISSING_EXTERNAL_USERID)
    follow = call.tenant.follow(userid, external_userid)
    add, remove = params.str_list(call.body, "add_tag"), params.str_list(call.body, "remove_tag")
    if not add and not remove:
        raise ApiError(errors.INVALID_PARAM, "add_tag and remove_tag are both empty")
    for tag_id in add + remove:
        call.tenant.tag(tag_id)
    kept = [t for t in follow.tag_ids if t not in remove]
    follow.tag_ids = kept + [t for t in dict.fromkeys(add) if t not in kept]
    return ok()


ROUTES: dict[str, Handler] = {
    "externalcontact/get_corp_tag_list": get_corp_tag_list,
    "externalcontact/add_corp_tag": add_corp_tag,
    "externalcontact/edit_corp_tag": edit_corp_tag,
    "externalcontact/del_corp_tag": del_corp_tag,
    "externalcontact/mark_tag": mark_tag,
}
