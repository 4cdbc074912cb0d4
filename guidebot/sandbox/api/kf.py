"""微信客服 APIs: sync_msg, send_msg, send_msg_on_event, service_state, customers, links."""

from __future__ import annotations

import logging
import re
from typing import Any

from guidebot.sandbox import errors, ids, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.kfstate import KfState
from guidebot.sandbox.models import JSON

log = logging.getLogger(__name__)

TEXT_MAX_BYTES = 2048  # kf text content (FACTS-next §A.4)
MSGID = re.compile(r"^[0-9a-zA-Z_-]{1,32}$")
SCENE = re.compile(r"^[0-9a-zA-Z_-]{1,32}$")
MAX_LIMIT = 1000


def _kf(call: ApiCall) -> KfState:
    return call.tenant.kf


def _account(call: ApiCall) -> str:
    open_kfid = params.text(call.body, "open_kfid", required=True)
    return _kf(call).account(open_kfid, call.tenant.settings.kf.open_kfids)


def sync_msg(call: ApiCall) -> JSON:
    kf = _kf(call)
    token = params.text(call.body, "token")
    if token:
        kf.check_token(token, call.now)
    open_kfid = params.text(call.body, "open_kfid")
    if open_kfid:
        kf.account(open_kfid, call.tenant.settings.kf.open_kfids)
    limit = params.integer(call.body, "limit", MAX_LIMIT, low=1, high=MAX_LIMIT)
    raw = params.text(call.body, "cursor", max_chars=64)
    start = params.cursor({"cursor": raw}) if raw else None
    if start is not None and start > len(kf.log):
        raise ApiError(errors.INVALID_PARAM, "unknown cursor")
    items, position, more = kf.sync(start, limit, open_kfid, call.now)
    return ok(next_cursor=str(position), has_more=int(more), msg_list=items)


def _message(call: ApiCall, allowed: tuple[str, ...]) -> JSON:
    msgtype = params.text(call.body, "msgtype", required=True)
    if msgtype not in allowed:
        raise ApiError(errors.INVALID_MSGTYPE, f"invalid msgtype {msgtype}")
    body = params.obj(call.body, msgtype)
    if msgtype == "text":
        content = params.text(body, "content", required=True, missing=errors.TEXT_EMPTY)
        params.within_bytes(content, "text.content", TEXT_MAX_BYTES, errors.MESSAGE_TOO_LARGE)
    elif msgtype == "miniprogram":
        for key in ("appid", "title", "thumb_media_id", "pagepath"):
            params.text(body, key, required=True)
        params.within_bytes(str(body["title"]), "miniprogram.title", 64)
        if body["thumb_media_id"] not in call.tenant.media:
            raise ApiError(errors.INVALID_MEDIA_ID, "invalid thumb_media_id")
    elif msgtype == "msgmenu":
        items = body.get("list") or []
        if not isinstance(items, list) or len(items) > 10:
            raise ApiError(errors.INVALID_PARAM, "msgmenu.list: at most 10 items")
    msgid = params.text(call.body, "msgid")
    if msgid and not MSGID.fullmatch(msgid):
        raise ApiError(errors.INVALID_PARAM, "msgid: at most 32 of [0-9a-zA-Z_-]")
    return {"msgtype": msgtype, msgtype: dict(body), "msgid": msgid}


def send_msg(call: ApiCall) -> JSON:
    open_kfid = _account(call)
    touser = params.text(call.body, "touser", required=True)
    message = _message(call, ("text", "miniprogram", "msgmenu", "link"))
    kf = _kf(call)
    session = kf.sessions.get((open_kfid, touser))
    if session is None:
        raise ApiError(errors.KF_STATE_FORBIDS_SEND)  # the customer never wrote: state 4
    kf.check_send(session, call.now)
    msgid = kf.new_msgid(message.pop("msgid"))
    session.sent += 1
    kf.record_sent(session, msgid, {"via": "send_msg", "open_kfid": open_kfid,
                                    "touser": touser, **message}, call.now)
    log.info("tenant %s: kf message sent (%d since the customer wrote)", call.tenant.id,
             session.sent)
    return ok(msgid=msgid)


def send_msg_on_event(call: ApiCall) -> JSON:
    code = params.text(call.body, "code", required=True)
    message = _message(call, ("text", "msgmenu"))
    kf = _kf(call)
    issued = kf.use_code(code, call.now)
    msgid = kf.new_msgid(message.pop("msgid"))
    session = kf.session(issued.open_kfid, issued.external_userid)
    kf.record_sent(session, msgid, {"via": "send_msg_on_event", "open_kfid": issued.open_kfid,
                                    "touser": issued.external_userid, "code": code, **message},
                   call.now)
    return ok(msgid=msgid)


def _pair(call: ApiCall) -> tuple[str, str]:
    open_kfid = _account(call)
    return open_kfid, params.text(call.body, "external_userid", required=True,
                                  missing=errors.MISSING_EXTERNAL_USERID)


def service_state_get(call: ApiCall) -> JSON:
    session = _kf(call).session(*_pair(call))
    return ok(service_state=session.state, servicer_userid=session.servicer)


def service_state_trans(call: ApiCall) -> JSON:
    session = _kf(call).session(*_pair(call))
    target = params.integer(call.body, "service_state", -1, low=0, high=4)
    servicer = params.text(call.body, "servicer_userid")
    if servicer:
        call.tenant.member(servicer)
    code = _kf(call).transition(session, target, servicer, call.now)
    return ok(msg_code=code) if code else ok()


def customer_batchget(call: ApiCall) -> JSON:
    wanted = params.str_list(call.body, "external_userid_list", max_items=100)
    if not wanted:
        raise ApiError(errors.INVALID_PARAM, "external_userid_list: 1 to 100 ids")
    kf = _kf(call)
    found: list[dict[str, Any]] = [dict(kf.customers[e]) for e in wanted if e in kf.customers]
    return ok(customer_list=found,
              invalid_external_userid=[e for e in wanted if e not in kf.customers])


def add_contact_way(call: ApiCall) -> JSON:
    open_kfid = _account(call)
    scene = params.text(call.body, "scene")
    if scene and not SCENE.fullmatch(scene):
        raise ApiError(errors.INVALID_PARAM, "scene: at most 32 of [0-9a-zA-Z_-]")
    url = (f"https://work.weixin.qq.com/kf/kfc{ids.random_text(30)}"
           f"?enc_scene=ENC{ids.random_text(24)}")
    _kf(call).contact_ways[url] = {"open_kfid": open_kfid, "scene": scene}
    return ok(url=url)


def account_list(call: ApiCall) -> JSON:
    """Accounts of the corp; `manage_privilege` is true for those configured for the tenant
    (the sandbox's stand-in for "this app may manage it")."""
    offset = params.integer(call.body, "offset", 0, low=0, high=10**6)
    limit = params.integer(call.body, "limit", 100, low=1, high=100)
    kf = _kf(call)
    for open_kfid in call.tenant.settings.kf.open_kfids:
        kf.ensure_account(open_kfid)
    accounts = [{"open_kfid": k, "name": name, "avatar": "",
                 "manage_privilege": k in call.tenant.settings.kf.open_kfids}
                for k, name in kf.accounts.items()]
    return ok(account_list=accounts[offset:offset + limit])


ROUTES: dict[str, Handler] = {
    "kf/account/list": account_list,
    "kf/sync_msg": sync_msg,
    "kf/send_msg": send_msg,
    "kf/send_msg_on_event": send_msg_on_event,
    "kf/service_state/get": service_state_get,
    "kf/service_state/trans": service_state_trans,
    "kf/customer/batchget": customer_batchget,
    "kf/add_contact_way": add_contact_way,
}
