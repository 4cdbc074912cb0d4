"""客户群 APIs (FACTS-next §C): groupchat/list and groupchat/get."""

from __future__ import annotations

from guidebot.sandbox import errors, groups, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

LIMIT_MAX = 1000  # FACTS-next §C: limit 1-1000, required
OWNERS_MAX = 100  # FACTS-next §C: owner_filter.userid_list ≤ 100
# FACTS-next §C: without an owner filter, 81017 when the app sees more than 1000 members. The
# sandbox counts every member the tenant knows (TenantState.members: each userid seeded, set
# in the directory or named in a call), as it has no app visibility range.
UNFILTERED_MEMBERS_MAX = 1000


def groupchat_list(call: ApiCall) -> JSON:
    # No default: a missing limit answers the parameter error too.
    limit = params.integer(call.body, "limit", 0, low=1, high=LIMIT_MAX)
    status_filter = params.integer(call.body, "status_filter", 0, low=min(groups.STATUS_FILTERS),
                                   high=max(groups.STATUS_FILTERS))
    owners = params.str_list(params.obj(call.body, "owner_filter"), "userid_list",
                             max_items=OWNERS_MAX)
    if not owners and len(call.tenant.members) > UNFILTERED_MEMBERS_MAX:
        raise ApiError(errors.OWNER_FILTER_REQUIRED)
    found = groups.listed(call.tenant, owners, status_filter)
    chunk, next_cursor = params.page(found, params.cursor(call.body), limit)
    return ok(group_chat_list=chunk, next_cursor=next_cursor)


def groupchat_get(call: ApiCall) -> JSON:
    chat_id = params.text(call.body, "chat_id", required=True)
    need_name = params.integer(call.body, "need_name", 0, low=0, high=1)
    return ok(group_chat=groups.view(call.tenant, chat_id, need_name=need_name == 1))


ROUTES: dict[str, Handler] = {
    "externalcontact/groupchat/list": groupchat_list,
    "externalcontact/groupchat/get": groupchat_get,
}
