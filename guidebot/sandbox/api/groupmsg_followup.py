"""群发 follow-ups: remind_groupmsg_send (≤ 3 per 24 h) and cancel_groupmsg_send (FACTS §3.5)."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

log = logging.getLogger(__name__)

REMINDS_PER_DAY = 3  # FACTS §3.5 [copy]
DAY_S = 86400.0


def _msgid(call: ApiCall) -> str:
    msgid = params.text(call.body, "msgid", required=True)
    if msgid not in call.tenant.templates:  # FACTS names no code for an unknown msgid
        raise ApiError(errors.INVALID_PARAM, f"invalid msgid {msgid}")
    return msgid


def remind_groupmsg_send(call: ApiCall) -> JSON:
    msgid = _msgid(call)
    recent = [t for t in call.tenant.remind_times.get(msgid, []) if t > call.now - DAY_S]
    if len(recent) >= REMINDS_PER_DAY:
        # FACTS gives the limit but no errcode: the sandbox answers 45009 (frequency limit).
        raise ApiError(errors.RATE_LIMITED, "remind at most 3 times in 24 hours")
    call.tenant.remind_times[msgid] = [*recent, call.now]
    log.info("tenant %s: group message reminded (%d in 24 h)", call.tenant.id, len(recent) + 1)
    return ok()


def cancel_groupmsg_send(call: ApiCall) -> JSON:
    call.tenant.cancelled_msgids.add(_msgid(call))
    return ok()


ROUTES: dict[str, Handler] = {
    "externalcontact/remind_groupmsg_send": remind_groupmsg_send,
    "externalcontact/cancel_groupmsg_send": cancel_groupmsg_send,
}
