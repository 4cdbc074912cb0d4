"""「联系我」 channel codes: externalcontact/add_contact_way, update_contact_way,
del_contact_way and get_contact_way."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, ids, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, ContactWay

log = logging.getLogger(__name__)

STATE_MAX_CHARS = 30  # FACTS §3.4
REMARK_MAX_CHARS = 30  # FACTS §3.4
QR_BASE = "https://sandbox.invalid/qr/"  # .invalid: a QR image the sandbox never serves


def add_contact_way(call: ApiCall) -> JSON:
    way_type = params.integer(call.body, "type", 0, low=1, high=2)
    scene = params.integer(call.body, "scene", 0, low=1, high=2)
    users = [call.tenant.member(u) for u in params.str_list(call.body, "user")]
    # The sandbox models no departments, so `party` alone cannot name anyone: user[] is required.
    if not users or (way_type == 1 and len(users) != 1):
        raise ApiError(errors.INVALID_PARAM, "user must name 1 member (type 1) or more (type 2)")
    body: JSON = {
        **call.body,
        "type": way_type,
        "scene": scene,
        "state": params.text(call.body, "state", max_chars=STATE_MAX_CHARS),
        "remark": params.text(call.body, "remark", max_chars=REMARK_MAX_CHARS),
        "skip_verify": call.body.get("skip_verify", True),
        "user": users,
    }
    config_id = ids.config_id()
    qr_code = QR_BASE + config_id if scene == 2 else ""
    call.tenant.contact_ways[config_id] = ContactWay(config_id, body, qr_code)
    log.info("tenant %s: contact way %s added", call.tenant.id, config_id)
    return ok(config_id=config_id, **({"qr_code": qr_code} if qr_code else {}))


def update_contact_way(call: ApiCall) -> JSON:
    """The contact way's members, state or remark changed. FACTS names this API only; the
    sandbox takes add_contact_way's fields, keeps those not given and, like add, wants
    exactly one member for a type 1 code (not in FACTS, sandbox's choice)."""
    config_id = params.text(call.body, "config_id", required=True)
    way = call.tenant.contact_ways.get(config_id)
    if way is None:  # FACTS names no code for an unknown config_id
        raise ApiError(errors.INVALID_PARAM, f"invalid config_id {config_id}")
    changes: JSON = {}
    if "user" in call.body:
        users = [call.tenant.member(u) for u in params.str_list(call.body, "user")]
        if not users or (way.body["type"] == 1 and len(users) != 1):
            raise ApiError(errors.INVALID_PARAM,
                           "user must name 1 member (type 1) or more (type 2)")
        changes["user"] = users
    if "state" in call.body:
        changes["state"] = params.text(call.body, "state", max_chars=STATE_MAX_CHARS)
    if "remark" in call.body:
        changes["remark"] = params.text(call.body, "remark", max_chars=REMARK_MAX_CHARS)
    if "skip_verify" in call.body:
        changes["skip_verify"] = bool(call.body["skip_verify"])
    way.body = {**way.body, **changes}
    log.info("tenant %s: contact way %s updated (%s)", call.tenant.id, config_id,
             ", ".join(sorted(changes)) or "nothing")
    return ok()


def del_contact_way(call: ApiCall) -> JSON:
    """The contact way is gone: its QR code adds no one (FACTS names the API only)."""
    config_id = params.text(call.body, "config_id", required=True)
    if call.tenant.contact_ways.pop(config_id, None) is None:
        raise ApiError(errors.INVALID_PARAM, f"invalid config_id {config_id}")
    log.info("tenant %s: contact way %s deleted", call.tenant.id, config_id)
    return ok()


def get_contact_way(call: ApiCall) -> JSON:
    config_id = params.text(call.body, "config_id", required=True)
    way = call.tenant.contact_ways.get(config_id)
    if way is None:  # FACTS names no code for an unknown config_id
        raise ApiError(errors.INVALID_PARAM, f"invalid config_id {config_id}")
    return ok(contact_way={"config_id": way.config_id, **way.body, "qr_code": way.qr_code})


ROUTES: dict[str, Handler] = {
    "externalcontact/add_contact_way": add_contact_way,
    "externalcontact/get_contact_way": get_contact_way,
    "externalcontact/update_contact_way": update_contact_way,
    "externalcontact/del_contact_way": del_contact_way,
}
