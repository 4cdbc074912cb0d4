"""Customer APIs: externalcontact/get, list, batch/get_by_user, get_follow_user_list, and the
member's remark of a customer (externalcontact/remark)."""

from __future__ import annotations

from guidebot.sandbox import errors, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, Customer, Follow
from guidebot.sandbox.tenant import TenantState

# externalcontact/get answers follow_user in pages of this many, with next_cursor until the last
# page. The 500 is from memory ([mem] in FACTS §3.2), not confirmed in WeCom's documentation.
FOLLOW_PAGE = 500
BATCH_MAX = 100  # FACTS §3.2 [mem]: userid_list ≤ 100, limit ≤ 100
BATCH_DEFAULT_LIMIT = 50  # not in FACTS


def _customer(tenant: TenantState, external_userid: str) -> Customer:
    customer = tenant.customers.get(external_userid)
    if customer is None:
        raise ApiError(errors.INVALID_EXTERNAL_USERID, f"unknown customer {external_userid}")
    return customer


def _tags(tenant: TenantState, follow: Follow) -> list[JSON]:
    found = [tenant.find_tag(tag_id) for tag_id in follow.tag_ids]
    return [
        {"group_name": group.group_name, "tag_name": tag.name, "tag_id": tag.id, "type": 1}
        for group, tag in filter(None, found)
    ]


def _follow_fields(follow: Follow) -> JSON:
    return {
        "userid": follow.userid, "remark": follow.remark, "description": follow.description,
        "createtime": follow.createtime, "remark_corp_name": "", "remark_mobiles": [],
        "oper_userid": follow.external_userid, "add_way": follow.add_way, "state": follow.state,
    }


def get(call: ApiCall) -> JSON:
    external_userid = params.text(
        call.query, "external_userid", required=True, missing=errors.MISSING_EXTERNAL_USERID)
    customer = _customer(call.tenant, external_userid)
    # A customer no member of the app is related to any more answers 84061 (FACTS: "不存在外部
    # 联系人的关系"); a one-way relation left by del_follow_user still counts (FACTS §2).
    follows = call.tenant.follows_of_customer(external_userid)
    if not follows:
        raise ApiError(errors.NO_RELATION)
    chunk, next_cursor = params.page(follows, params.cursor(call.query), FOLLOW_PAGE)
    follow_user = [{**_follow_fields(f), "tags": _tags(call.tenant, f)} for f in chunk]
    return ok(external_contact=customer.to_json(), follow_user=follow_user,
              next_cursor=next_cursor)


def list_(call: ApiCall) -> JSON:
    userid = call.tenant.member(params.text(call.query, "userid", required=True))
    external = [f.external_userid for f in call.tenant.follows_of_member(userid)]
    if not external:
        raise ApiError(errors.NO_RELATION)  # FACTS §3.2 [mem]: 84061 when no customers
    return ok(external_userid=external)


def batch_get_by_user(call: ApiCall) -> JSON:
    userids = params.str_list(call.body, "userid_list", max_items=BATCH_MAX)
    if not userids:
        raise ApiError(errors.INVALID_PARAM, "userid_list is required")
    limit = params.integer(call.body, "limit", BATCH_DEFAULT_LIMIT, low=1, high=BATCH_MAX)
    follows = [f for u in userids for f in call.tenant.follows_of_member(call.tenant.member(u))]
    chunk, next_cursor = params.page(follows, params.cursor(call.body), limit)
    items = [_batch_item(call.tenant, f) for f in chunk]
    return ok(external_contact_list=items, next_cursor=next_cursor)


def _batch_item(tenant: TenantState, follow: Follow) -> JSON:
    info = {**_follow_fields(follow), "tag_id": [t["tag_id"] for t in _tags(tenant, follow)]}
    return {"external_contact": tenant.customers[follow.external_userid].to_json(),
            "follow_info": info}


def get_follow_user_list(call: ApiCall) -> JSON:
    return ok(follow_user=list(call.tenant.members))


def remark(call: ApiCall) -> JSON:
    """The member's remark and description of the customer, returned by get and batch
    afterwards. No edit_external_contact callback (FACTS: not for API edits). A member without
    this relation answers 84061, as mark_tag does (assumed: not in FACTS for remark). WeCom's
    length limits are not in FACTS: none is enforced here. A field left out is kept (not in
    FACTS either)."""
    userid = call.tenant.member(params.text(call.body, "userid", required=True))
    external_userid = params.text(
        call.body, "external_userid", required=True, missing=errors.MISSING_EXTERNAL_USERID)
    follow = call.tenant.follow(userid, external_userid)
    if "remark" in call.body:
        follow.remark = params.text(call.body, "remark")
    if "description" in call.body:
        follow.description = params.text(call.body, "description")
    return ok()


ROUTES: dict[str, Handler] = {
    "externalcontact/get": get,
    "externalcontact/remark": remark,
    "externalcontact/list": list_,
    "externalcontact/batch/get_by_user": batch_get_by_user,
    "externalcontact/get_follow_user_list": get_follow_user_list,
}
