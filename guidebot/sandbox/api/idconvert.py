"""unionid/openid ↔ external_userid conversion APIs (not in FACTS: shapes from memory, [mem]).

* `externalcontact/unionid_to_external_userid` (self-built app, doc 93274 [mem]):
  `{unionid, openid}` → `{external_userid}`.
* `idconvert/unionid_to_external_userid` (the 2022 variant [mem]): `{unionid, openid,
  subject_type}` → `{external_userid}` when the customer is a contact, else `{pending_id}`.
* `externalcontact/convert_to_openid` (doc 92323 [mem]): `{external_userid}` → `{openid}`.

The sandbox's openid of a customer is derived from their unionid (one mini program per corp);
an openid that does not belong to the unionid is refused with 40058, an unknown unionid with
84061 — both codes are the sandbox's choice, not documented facts.
"""

from __future__ import annotations

import hashlib

from guidebot.sandbox import errors, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, Customer
from guidebot.sandbox.tenant import TenantState


def openid_of(unionid: str) -> str:
    """The sandbox mini program's openid of a WeChat user (stable, like the real one)."""
    return "o" + hashlib.sha256(("openid:" + unionid).encode()).hexdigest()[:27]


def _by_unionid(tenant: TenantState, unionid: str) -> Customer | None:
    return next((c for c in tenant.customers.values() if c.unionid == unionid), None)


def _checked(call: ApiCall) -> tuple[str, str]:
    unionid = params.text(call.body, "unionid", required=True)
    openid = params.text(call.body, "openid", required=True)
    if openid != openid_of(unionid):
        raise ApiError(errors.INVALID_PARAM, "openid does not belong to unionid")
    return unionid, openid


def unionid_to_external_userid(call: ApiCall) -> JSON:
    unionid, _ = _checked(call)
    customer = _by_unionid(call.tenant, unionid)
    if customer is None or not call.tenant.follows_of_customer(customer.external_userid):
        raise ApiError(errors.NO_RELATION)
    return ok(external_userid=customer.external_userid)


def idconvert_unionid(call: ApiCall) -> JSON:
    unionid, _ = _checked(call)
    customer = _by_unionid(call.tenant, unionid)
    if customer is None or not call.tenant.follows_of_customer(customer.external_userid):
        return ok(pending_id="p" + hashlib.sha256(unionid.encode()).hexdigest()[:20])
    return ok(external_userid=customer.external_userid)


def convert_to_openid(call: ApiCall) -> JSON:
    external_userid = params.text(call.body, "external_userid", required=True)
    customer = call.tenant.customers.get(external_userid)
    if customer is None:
        raise ApiError(errors.INVALID_EXTERNAL_USERID, f"unknown customer {external_userid}")
    if not customer.unionid:
        raise ApiError(errors.NO_RELATION)
    return ok(openid=openid_of(customer.unionid))


ROUTES: dict[str, Handler] = {
    "externalcontact/unionid_to_external_userid": unionid_to_external_userid,
    "idconvert/unionid_to_external_userid": idconvert_unionid,
    "externalcontact/convert_to_openid": convert_to_openid,
}
