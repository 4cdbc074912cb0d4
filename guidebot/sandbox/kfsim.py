"""Simulated 微信客服 customers: a customer writes or enters a session, and WeCom raises
`kf_msg_or_event` (no content, a fresh Token, the OpenKfId) at the bot's callback URL."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from guidebot.sandbox import ids
from guidebot.sandbox.callbacks import encrypt, to_xml
from guidebot.sandbox.delivery import not_delivered
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.kfstate import REMOVED, SERVING, STOPPED
from guidebot.sandbox.models import JSON
from guidebot.sandbox.sandbox import Sandbox
from guidebot.sandbox.tenant import TenantState, is_userid

log = logging.getLogger(__name__)

SERVICER_STATUS = {"serving": SERVING, "stopped": STOPPED, "removed": REMOVED}


def _str(body: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise ControlError(400, f"{key} must be a {'non-empty ' if required else ''}string")
    return value


def _customer(tenant: TenantState, body: Mapping[str, Any]) -> tuple[str, str]:
    """The account (created if new: it exists in WeCom, configured for the bot or not) and the
    customer, whose unionid is the 客户联系 customer's when the ids match."""
    open_kfid = _str(body, "open_kfid")
    tenant.kf.ensure_account(open_kfid)
    external_userid = _str(body, "external_userid", required=False) or ids.external_userid()
    contact = tenant.customers.get(external_userid)
    tenant.kf.customer(external_userid,
                       unionid=_str(body, "unionid", required=False)
                       or (contact.unionid if contact else ""),
                       nickname=_str(body, "nickname", required=False))
    return open_kfid, external_userid


async def notify(sandbox: Sandbox, tenant_id: str, open_kfid: str, *,
                 deliver: bool = True) -> JSON:
    """The callback: FACTS-next §A.2 (no FromUserName; Token valid 10 minutes)."""
    tenant = sandbox.tenant(tenant_id)
    now = sandbox.now()
    token = tenant.kf.issue_token(now)
    xml = to_xml({"ToUserName": tenant.settings.corp_id, "CreateTime": int(now),
                  "MsgType": "event", "Event": "kf_msg_or_event", "Token": token,
                  "OpenKfId": open_kfid})
    if not deliver:
        return {"token": token, **not_delivered()}
    url = f"{sandbox.callback_base}/wecom/{tenant_id}/callback"
    delivery = await sandbox.deliverer.post(url, encrypt(tenant.settings, xml))
    log.info("tenant %s: kf_msg_or_event answered %s", tenant_id, delivery["status"])
    return {"token": token, **delivery}


async def kf_message(sandbox: Sandbox, tenant_id: str, body: Mapping[str, Any], *,
                     deliver: bool = True) -> JSON:
    tenant = sandbox.tenant(tenant_id)
    open_kfid, external_userid = _customer(tenant, body)
    item = tenant.kf.customer_writes(open_kfid, external_userid, _str(body, "text"),
                                     sandbox.now())
    delivery = await notify(sandbox, tenant_id, open_kfid, deliver=deliver)
    return {"msgid": item["msgid"], "open_kfid": open_kfid,
            "external_userid": external_userid, "delivery": delivery}


async def kf_enter(sandbox: Sandbox, tenant_id: str, body: Mapping[str, Any], *,
                   deliver: bool = True) -> JSON:
    tenant = sandbox.tenant(tenant_id)
    open_kfid, external_userid = _customer(tenant, body)
    scene_param = _str(body, "scene_param", required=False)
    if len(scene_param.encode()) > 128:
        raise ControlError(400, "scene_param: at most 128 bytes (FACTS-next §A.7)")
    item = tenant.kf.customer_enters(open_kfid, external_userid,
                                     _str(body, "scene", required=False), scene_param,
                                     sandbox.now(), sandbox.options.welcome_window_s)
    delivery = await notify(sandbox, tenant_id, open_kfid, deliver=deliver)
    return {"msgid": item["msgid"], "open_kfid": open_kfid, "external_userid": external_userid,
            "welcome_code": item["event"].get("welcome_code", ""), "delivery": delivery}


async def kf_servicer_message(sandbox: Sandbox, tenant_id: str, body: Mapping[str, Any], *,
                             deliver: bool = True) -> JSON:
    """The session's servicer writes from the WeCom client (sync_msg origin 5)."""
    tenant = sandbox.tenant(tenant_id)
    open_kfid, external_userid = _str(body, "open_kfid"), _str(body, "external_userid")
    servicer = _str(body, "servicer_userid", required=False) or tenant.kf.session(
        open_kfid, external_userid).servicer
    try:
        item = tenant.kf.servicer_writes(open_kfid, external_userid, servicer,
                                         _str(body, "text"), sandbox.now())
    except ApiError as exc:
        raise ControlError(409, exc.errmsg) from None
    delivery = await notify(sandbox, tenant_id, open_kfid, deliver=deliver)
    return {"msgid": item["msgid"], "servicer_userid": servicer, "delivery": delivery}


async def kf_session_change(sandbox: Sandbox, tenant_id: str, body: Mapping[str, Any], *,
                            deliver: bool = True) -> JSON:
    """A servicer takes the session from the pool (change_type 1, new_servicer_userid), ends
    it (3) or transfers it (2, to new_servicer_userid) in the WeCom client: the event
    session_status_change. `"unconfirmed": true` with another whole number (4…) puts such an
    event in sync_msg as it is, the session unchanged: no such change_type is in the facts,
    so this only tests that guidebot takes an unknown one harmlessly."""
    tenant = sandbox.tenant(tenant_id)
    open_kfid, external_userid = _str(body, "open_kfid"), _str(body, "external_userid")
    change_type = body.get("change_type")
    if body.get("unconfirmed") is True and isinstance(change_type, int) \
            and change_type not in (1, 2, 3):
        item = tenant.kf.unknown_change(open_kfid, external_userid, change_type,
                                        _str(body, "new_servicer_userid", required=False),
                                        sandbox.now())
        delivery = await notify(sandbox, tenant_id, open_kfid, deliver=deliver)
        return {"msgid": item["msgid"], "event": item["event"], "delivery": delivery}
    if change_type not in (1, 2, 3):
        raise ControlError(400, "change_type must be 1 (from the pool), 2 (transfer) or 3 (end)")
    try:
        item = tenant.kf.session_changes(open_kfid, external_userid, int(change_type),
                                         _str(body, "new_servicer_userid", required=False),
                                         sandbox.now())
    except ApiError as exc:
        raise ControlError(409, exc.errmsg) from None
    delivery = await notify(sandbox, tenant_id, open_kfid, deliver=deliver)
    return {"msgid": item["msgid"], "event": item["event"], "delivery": delivery}


async def kf_queue(sandbox: Sandbox, tenant_id: str, body: Mapping[str, Any], *,
                   deliver: bool = True) -> JSON:
    """WeCom's own routing queues the session in the pool (state 2) without any API call:
    how a session guidebot never handed gets there (an account whose reception sends
    customers to people). Whether sync_msg gets an event for this is not in the facts: the
    sandbox adds none, and `deliver` is unused."""
    del deliver
    tenant = sandbox.tenant(tenant_id)
    open_kfid, external_userid = _str(body, "open_kfid"), _str(body, "external_userid")
    try:
        tenant.kf.queue(open_kfid, external_userid, sandbox.now())
    except ApiError as exc:
        raise ControlError(409, exc.errmsg) from None
    return {"open_kfid": open_kfid, "external_userid": external_userid, "service_state": 2}


def set_servicer(sandbox: Sandbox, tenant_id: str, body: Mapping[str, Any]) -> JSON:
    """A servicer's status on an account: any member serves every account unless set here."""
    tenant = sandbox.tenant(tenant_id)
    open_kfid, userid = _str(body, "open_kfid"), _str(body, "userid")
    status = SERVICER_STATUS.get(_str(body, "status"))
    if status is None or not is_userid(userid):
        raise ControlError(400, "status must be serving, stopped or removed; userid a userid")
    tenant.kf.ensure_account(open_kfid)
    tenant.kf.servicers[(open_kfid, tenant.member(userid))] = status
    return {"open_kfid": open_kfid, "userid": userid, "status": body["status"]}
