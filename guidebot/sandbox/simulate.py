"""State changes behind simulated customer actions and events, and the fields they emit."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from guidebot.sandbox import ids, tagbook
from guidebot.sandbox.callbacks import is_element_name
from guidebot.sandbox.errors import ControlError
from guidebot.sandbox.models import JSON, Customer, Follow, WelcomeCode
from guidebot.sandbox.tenant import TenantState, is_userid

log = logging.getLogger(__name__)

CONTACT_EVENT = "change_external_contact"
ADD_WAY_UNKNOWN, ADD_WAY_QR = 0, 1  # [mem] follow_user.add_way: 0 未知来源, 1 扫描二维码
ADD_CHANGES = ("add_external_contact", "add_half_external_contact")


def add_contact(tenant: TenantState, now: float, request: Mapping[str, Any]) -> JSON:
    """A customer adds a member (directly or through a 「联系我」 config); returns the fields."""
    userid, state, add_way = _who(tenant, request)
    external_userid = _opt_str(request, "external_userid") or ids.external_userid()
    _upsert_customer(tenant, external_userid, request)
    create_time = request.get("create_time") or int(now)
    if not isinstance(create_time, int):
        raise ControlError(400, "create_time must be an integer (Unix seconds)")
    tenant.put_follow(Follow(userid, external_userid, create_time, state, add_way=add_way))
    code = ids.welcome_code()
    tenant.welcome_codes[code] = WelcomeCode(code, userid, external_userid, issued_at=now)
    log.info("tenant %s: simulated add of a customer by %s", tenant.id, userid)
    return {
        "CreateTime": create_time, "Event": CONTACT_EVENT, "ChangeType": "add_external_contact",
        "UserID": userid, "ExternalUserID": external_userid,
        **({"State": state} if state else {}), "WelcomeCode": code,
    }


def _opt_str(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if value is not None and not isinstance(value, str):
        raise ControlError(400, f"{key} must be a string")
    return value or ""


def _who(tenant: TenantState, request: Mapping[str, Any]) -> tuple[str, str, int]:
    """userid, state and add_way: from the contact way when config_id is given."""
    userid, config_id = _opt_str(request, "userid"), _opt_str(request, "config_id")
    state, add_way = _opt_str(request, "state"), ADD_WAY_UNKNOWN
    if config_id:
        way = tenant.contact_ways.get(config_id)
        if way is None:
            raise ControlError(404, f"no contact way {config_id}")
        users = way.body["user"]
        userid = userid if userid in users else users[0]
        state, add_way = way.body["state"], ADD_WAY_QR
    if not is_userid(userid):
        raise ControlError(400, "give a well-formed userid or a config_id")
    tenant.member(userid)
    return userid, state, add_way


def _upsert_customer(
    tenant: TenantState, external_userid: str, request: Mapping[str, Any]
) -> None:
    name, unionid = _opt_str(request, "name"), _opt_str(request, "unionid")
    customer = tenant.customers.get(external_userid)
    if customer is None:
        customer = Customer(external_userid, name or ids.demo_name(), unionid or ids.unionid())
        tenant.customers[external_userid] = customer
    customer.name = name or customer.name
    customer.unionid = unionid or customer.unionid


def check_fields(fields: object) -> Mapping[str, Any]:
    if not isinstance(fields, dict) or not fields:
        raise ControlError(400, "fields must be a non-empty object")
    bad = [k for k in fields if not is_element_name(k)]
    if bad:
        raise ControlError(400, f"not XML element names: {', '.join(map(str, bad))}")
    return fields


def apply_event(tenant: TenantState, fields: Mapping[str, Any], now: float) -> None:
    """Keep sandbox state in line with a simulated event, where the event implies a change."""
    event, change = fields.get("Event"), fields.get("ChangeType")
    if event == CONTACT_EVENT:
        _contact_change(tenant, str(change), fields, now)
    elif event == "change_external_tag" and change == "delete" and fields.get("Id"):
        tagbook.delete_tag_or_group(tenant, str(fields["Id"]))


def _contact_change(
    tenant: TenantState, change: str, fields: Mapping[str, Any], now: float
) -> None:
    userid, external_userid = str(fields.get("UserID", "")), str(fields.get("ExternalUserID", ""))
    key = (userid, external_userid)
    if change == "del_external_contact":  # the member deleted the customer: relation gone
        tenant.drop_follow(userid, external_userid)
    elif change == "del_follow_user" and key in tenant.follows:
        # FACTS §2: the customer deleted the member; the one-way relation remains.
        tenant.follows[key].customer_deleted = True
    elif change in ADD_CHANGES and is_userid(userid) and external_userid:
        _upsert_customer(tenant, external_userid, {})
        if key not in tenant.follows:
            tenant.put_follow(Follow(tenant.member(userid), external_userid, int(now),
                                     str(fields.get("State", ""))))
    code = fields.get("WelcomeCode")
    if isinstance(code, str) and code and external_userid:
        tenant.welcome_codes[code] = WelcomeCode(code, userid, external_userid, issued_at=now)


def edit_tags(tenant: TenantState, request: Mapping[str, Any]) -> JSON:
    """A member edits a customer's tags ("add", "remove": names or ids) and/or remark and
    description ("remark", "description": strings; one left out is kept) in the WeCom client;
    returns the edit_external_contact fields WeCom then raises (FACTS §2: UserID and
    ExternalUserID, no detail; raised for remark and tag edits in the client)."""
    userid, external_userid = _opt_str(request, "userid"), _opt_str(request, "external_userid")
    follow = tenant.follows.get((userid, external_userid))
    if follow is None:
        raise ControlError(404, f"{userid or '(no userid)'} has no relation with "
                                f"{external_userid or '(no external_userid)'}")
    add = [_tag_id(tenant, t) for t in _names(request, "add")]
    remove = {_tag_id(tenant, t) for t in _names(request, "remove")}
    texts = {key: _opt_str(request, key) for key in ("remark", "description")
             if key in request}
    if not add and not remove and not texts:
        raise ControlError(400, "give tags to add or remove (names or ids), or a remark or "
                                "description")
    kept = [t for t in follow.tag_ids if t not in remove]
    follow.tag_ids = kept + [t for t in dict.fromkeys(add) if t not in kept]
    follow.remark = texts.get("remark", follow.remark)
    follow.description = texts.get("description", follow.description)
    log.info("tenant %s: %s edited a customer's tags or remark in the client", tenant.id,
             userid)
    return {"Event": CONTACT_EVENT, "ChangeType": "edit_external_contact", "UserID": userid,
            "ExternalUserID": external_userid}


def _names(request: Mapping[str, Any], key: str) -> list[str]:
    value = request.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ControlError(400, f"{key} must be a list of tag names or ids")
    return value


def _tag_id(tenant: TenantState, name_or_id: str) -> str:
    """A live tag by id, else by name (a name in several groups needs the id)."""
    if tenant.find_tag(name_or_id) is not None:
        return name_or_id
    found = [t.id for g in tenant.tag_groups.values() if not g.deleted for t in g.tags
             if t.name == name_or_id and not t.deleted]
    if len(found) != 1:
        problem = "is in several groups; give its id" if found else "is not a live corp tag"
        raise ControlError(400, f"tag {name_or_id!r} {problem}")
    return found[0]
