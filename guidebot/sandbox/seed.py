"""Seeding an existing customer base in bulk (HQ's dry-run): relations, no callbacks."""

from __future__ import annotations

import sys
from typing import Any

from guidebot.sandbox import ids
from guidebot.sandbox.errors import ControlError
from guidebot.sandbox.models import JSON, Customer, Follow
from guidebot.sandbox.tenant import TenantState, is_userid

SEED_KEYS = frozenset({"userid", "external_userid", "name"})
EXTERNAL_USERID_MAX = 128  # guidebot's column width; WeCom's ids are 32 characters


def seed(tenant: TenantState, follows: object, now: float) -> JSON:
    """Create the customers and relations listed, in one O(n) pass after checking them all
    (a bad item rejects the whole chunk, so nothing is half-applied). Existing relations
    and customers are kept as they are. No callback is delivered: these customers were
    added before the dry-run began."""
    items = _checked(follows)
    created_customers = created_follows = 0
    for userid, external_userid, name in items:
        member = tenant.member(userid)
        if external_userid not in tenant.customers:
            # Names from a small pool are interned: a million customers share a few thousand.
            tenant.customers[external_userid] = Customer(
                external_userid, sys.intern(name or ids.demo_name()), unionid="")
            created_customers += 1
        if (member, external_userid) not in tenant.follows:
            tenant.put_follow(Follow(member, external_userid, int(now)))
            created_follows += 1
    return {"customers": created_customers, "follows": created_follows,
            "members": len(tenant.members)}


def _checked(follows: object) -> list[tuple[str, str, str]]:
    if not isinstance(follows, list) or not follows:
        raise ControlError(400, "follows must be a non-empty list")
    return [_item(index, item) for index, item in enumerate(follows)]


def _item(index: int, item: Any) -> tuple[str, str, str]:
    where = f"follows[{index}]"
    if not isinstance(item, dict):
        raise ControlError(400, f"{where} must be an object")
    unknown = sorted(set(item) - SEED_KEYS)
    if unknown:
        raise ControlError(400, f"{where}: unknown key(s) {', '.join(unknown)}")
    userid, external_userid, name = (item.get("userid"), item.get("external_userid"),
                                     item.get("name", ""))
    if not is_userid(userid):
        raise ControlError(400, f"{where}.userid must be a well-formed userid")
    if not isinstance(external_userid, str) or not 0 < len(external_userid) \
            <= EXTERNAL_USERID_MAX or external_userid.strip() != external_userid:
        raise ControlError(400, f"{where}.external_userid must be 1-{EXTERNAL_USERID_MAX} "
                                "characters without surrounding spaces")
    if not isinstance(name, str):
        raise ControlError(400, f"{where}.name must be a string")
    return userid, external_userid, name
