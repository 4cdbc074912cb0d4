"""ticket/get?type=agent_config and auth/getuserinfo (FACTS-next §B.2, §B.7)."""

from __future__ import annotations

from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.jsapi import TICKET_TTL_S
from guidebot.sandbox.models import JSON


def agent_ticket(call: ApiCall) -> JSON:
    ticket = call.tenant.jsapi.agent_ticket(call.query.get("type", ""), call.now)
    return ok(ticket=ticket.ticket, expires_in=TICKET_TTL_S)


def getuserinfo(call: ApiCall) -> JSON:
    # A member's code answers userid (+ user_ticket only for snsapi_privateinfo, which the
    # sandbox does not issue); codes for non-members are not emulated.
    userid = call.tenant.jsapi.redeem(call.query.get("code", ""), call.now)
    return ok(userid=userid)


ROUTES: dict[str, Handler] = {"ticket/get": agent_ticket, "auth/getuserinfo": getuserinfo}
