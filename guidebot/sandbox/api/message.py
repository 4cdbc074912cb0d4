"""message/send: app messages to members, with the per-member minute quota (FACTS §3.7)."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, ids, msgtypes, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, AppMessage
from guidebot.sandbox.tenant import TenantState, is_userid

log = logging.getLogger(__name__)


def send(call: ApiCall) -> JSON:
    _check_agent(call)
    msgtype = params.text(call.body, "msgtype", required=True)
    check = msgtypes.CHECKS.get(msgtype)
    if check is None:
        raise ApiError(errors.INVALID_MSGTYPE, f"invalid msgtype {msgtype}")
    raw = call.body.get(msgtype)
    if not isinstance(raw, dict):
        raise ApiError(errors.INVALID_PARAM, f"missing {msgtype} object")
    content = check(call.tenant, raw, call.now)
    userids, invalid = _recipients(call.tenant, params.text(call.body, "touser"))
    toparty, totag = params.text(call.body, "toparty"), params.text(call.body, "totag")
    if not userids and not invalid and not toparty and not totag:
        raise ApiError(errors.INVALID_PARAM, "touser, toparty and totag are all empty")
    msgid = ids.msgid()
    dropped = sum(_deliver(call, msgid, u, msgtype, content) for u in userids)
    log.info("tenant %s: app message to %d member(s), %d dropped", call.tenant.id,
             len(userids), dropped)
    # The sandbox has no departments or member tags: every toparty / totag is reported invalid.
    return ok(invaliduser="|".join(invalid), invalidparty=toparty, invalidtag=totag,
              unlicenseduser="", msgid=msgid)


def _check_agent(call: ApiCall) -> None:
    agentid = call.body.get("agentid")
    if str(agentid) != str(call.tenant.settings.agent_id):
        raise ApiError(errors.INVALID_AGENTID, f"invalid agentid {agentid}")


def _recipients(tenant: TenantState, touser: str) -> tuple[list[str], list[str]]:
    if touser == "@all":
        return list(tenant.members), []
    names = list(dict.fromkeys(u for u in touser.split("|") if u))
    valid = [tenant.member(u) for u in names if is_userid(u)]
    return valid, [u for u in names if not is_userid(u)]


def _deliver(call: ApiCall, msgid: str, userid: str, msgtype: str, content: JSON) -> bool:
    """Record one recipient's copy; True when it is over the quota and silently dropped."""
    quota = call.tenant.settings.quotas.app_msg_per_guide_per_min
    dropped = not call.tenant.app_msg_window.hit(userid, call.now, quota)
    call.tenant.app_messages.append(
        AppMessage(msgid, userid, msgtype, content, call.now, dropped=dropped))
    return dropped


ROUTES: dict[str, Handler] = {"message/send": send}
