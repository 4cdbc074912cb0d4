"""The /_sandbox control routes: inspect calls and state, inject faults, simulate customers."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from guidebot.sandbox import acquisition, appmsg, kfsim, transfers
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.sandbox import Sandbox
from guidebot.sandbox.simulate import check_fields
from guidebot.sandbox.webio import SANDBOX_KEY, json_response

log = logging.getLogger(__name__)

Route = Callable[[Sandbox, web.Request], Awaitable[Any]]


def _view(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def view(request: web.Request) -> web.Response:
        try:
            return json_response(await route(request.app[SANDBOX_KEY], request))
        except ControlError as exc:
            return json_response({"error": exc.message}, exc.status)
    return view


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _deliver(body: dict[str, Any]) -> bool:
    deliver = body.get("deliver", True)
    if not isinstance(deliver, bool):
        raise ControlError(400, "deliver must be true or false")
    return deliver


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{key} must be a non-empty string")
    return value


async def get_calls(sandbox: Sandbox, request: web.Request) -> Any:
    query = request.query
    return {"calls": sandbox.calls(query.get("tenant"), query.get("path"))}


async def clear_calls(sandbox: Sandbox, request: web.Request) -> Any:
    sandbox.call_log.clear()
    return {"ok": True}


async def add_fault(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    tenant = body.get("tenant")
    if tenant is not None:
        sandbox.tenant(_str(body, "tenant"))
    fault = sandbox.faults.add(tenant, body.get("path"), body.get("errcode", 0),
                               body.get("times", 1), body.get("delay_s", 0),
                               body.get("http_status", 0))
    return {"fault": vars(fault)}


async def list_faults(sandbox: Sandbox, request: web.Request) -> Any:
    return {"faults": sandbox.faults.list()}


async def clear_faults(sandbox: Sandbox, request: web.Request) -> Any:
    sandbox.faults.clear()
    return {"ok": True}


async def add_contact(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return await sandbox.add_contact(request.match_info["tenant"], body, deliver=_deliver(body))


async def acquisition_add(sandbox: Sandbox, request: web.Request) -> Any:
    """{"url": a 获客助手 link's url, with ?customer_channel=… or not, "external_userid"?,
    "name"?, "unionid"?, "userid"?, "deliver"}: a customer adds a member through the link."""
    body = await _body(request)
    return await sandbox.simulate_acquisition_add(
        request.match_info["tenant"], _str(body, "url"), userid=body.get("userid"),
        external_userid=body.get("external_userid"), name=body.get("name"),
        unionid=body.get("unionid"), deliver=_deliver(body))


async def acquisition_click(sandbox: Sandbox, request: web.Request) -> Any:
    """{"url"}: a customer opens a 获客助手 link and adds nobody (statistic counts a click)."""
    body = await _body(request)
    return sandbox.simulate_acquisition_click(request.match_info["tenant"], _str(body, "url"))


async def acquisition_event(sandbox: Sandbox, request: web.Request) -> Any:
    """{"change_type", "link_id"?, "userid"?, "external_userid"?, "deliver"}: WeCom's
    customer_acquisition callback (balance_low, balance_exhausted, link_unavailable,
    delete_link, customer_start_chat, friend_request; any other is sent as given)."""
    body = await _body(request)
    extra = {key: body.get(key, "") for key in ("link_id", "userid", "external_userid")}
    if not all(isinstance(v, str) for v in extra.values()):
        raise ControlError(400, "link_id, userid and external_userid must be strings")
    return await sandbox.simulate_acquisition_event(
        request.match_info["tenant"], _str(body, "change_type"), deliver=_deliver(body),
        **extra)


async def acquisition_quota(sandbox: Sandbox, request: web.Request) -> Any:
    """{"total", "balance", "quota_list"?: [{"expire_date", "balance"}]}: the corp's paid
    获客助手 quota as customer_acquisition_quota answers it from now on."""
    body = await _body(request)
    return acquisition.set_quota(sandbox.tenant(request.match_info["tenant"])
                                 .acquisition_quota, body)


async def event(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    fields = check_fields(body.get("fields"))
    return await sandbox.simulate_event(request.match_info["tenant"], fields,
                                        deliver=_deliver(body))


async def tags(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return await sandbox.console_add_tags(request.match_info["tenant"], body,
                                          deliver=_deliver(body))


async def edit_tag(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return await sandbox.console_edit_tag(
        request.match_info["tenant"], {**body, "id": request.match_info["tag_id"]},
        deliver=_deliver(body))


async def seed(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return sandbox.seed(request.match_info["tenant"], body.get("follows"))


async def edit_tags(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return await sandbox.client_edit_tags(request.match_info["tenant"], body,
                                          deliver=_deliver(body))


async def moment_job_polls(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return sandbox.set_moment_job_polls(request.match_info["tenant"], body.get("polls"))


async def revoke_token(sandbox: Sandbox, request: web.Request) -> Any:
    return {"revoked": sandbox.revoke_token(request.match_info["tenant"])}


async def confirm_groupmsg(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return sandbox.confirm_groupmsg(request.match_info["tenant"], _str(body, "msgid"),
                                   _str(body, "userid"))


async def moment_published(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return sandbox.publish_moment(request.match_info["tenant"], _str(body, "moment_id"),
                                  _str(body, "userid"))


async def directory(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return await sandbox.set_directory(request.match_info["tenant"], body,
                                       deliver=_deliver(body))


async def clock(sandbox: Sandbox, request: web.Request) -> Any:
    """Advance the sandbox clock by {"seconds"} (≥ 0), then settle every tenant's due customer
    transfers and group inheritances, delivering their callbacks unless "deliver" is false."""
    body = await _body(request)
    seconds = body.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ControlError(400, "seconds must be a number ≥ 0")
    return await sandbox.advance(seconds, deliver=_deliver(body))


async def settle_transfers(sandbox: Sandbox, request: web.Request) -> Any:
    body = await _body(request)
    return {"deliveries": await sandbox.settle_transfers(request.match_info["tenant"],
                                                         deliver=_deliver(body))}


async def refuse_transfer(sandbox: Sandbox, request: web.Request) -> Any:
    """{"external_userid", "takeover_userid", "reason": customer_refused|customer_limit_exceed,
    "deliver"}: the customer refuses a waiting on-job transfer (status 3 or 4)."""
    body = await _body(request)
    return await sandbox.refuse_transfer(
        request.match_info["tenant"], _str(body, "external_userid"),
        _str(body, "takeover_userid"), body.get("reason"), deliver=_deliver(body))


async def transfer_limit(sandbox: Sandbox, request: web.Request) -> Any:
    """{"userid", "full": true|false}: a member at their customer limit (transfers to them
    answer 40099 per customer)."""
    body = await _body(request)
    full = body.get("full", True)
    if not isinstance(full, bool):
        raise ControlError(400, "full must be true or false")
    return transfers.set_full(sandbox.tenant(request.match_info["tenant"]),
                              _str(body, "userid"), full)


async def group_create(sandbox: Sandbox, request: web.Request) -> Any:
    """{"owner", "name"?, "notice"?, "members"?: [ids], "chat_id"?, "deliver"}: a member
    creates a customer group (change_external_chat create)."""
    body = await _body(request)
    return await sandbox.create_group(
        request.match_info["tenant"], _str(body, "owner"), name=body.get("name"),
        notice=body.get("notice"), members=body.get("members"), chat_id=body.get("chat_id"),
        deliver=_deliver(body))


async def group_join(sandbox: Sandbox, request: web.Request) -> Any:
    """{"chat_id", "members": [ids], "join_scene": 0|3 (default 0), "invitor"?, "deliver"}."""
    body = await _body(request)
    return await sandbox.join_group(
        request.match_info["tenant"], _str(body, "chat_id"), body.get("members", []),
        join_scene=body.get("join_scene", 0), invitor=body.get("invitor"),
        deliver=_deliver(body))


async def group_join_way(sandbox: Sandbox, request: web.Request) -> Any:
    """{"config_id", "members": [ids], "deliver"}: customers join through a 群活码."""
    body = await _body(request)
    return await sandbox.join_group_by_way(
        request.match_info["tenant"], _str(body, "config_id"), body.get("members", []),
        deliver=_deliver(body))


async def group_quit(sandbox: Sandbox, request: web.Request) -> Any:
    """{"chat_id", "members": [ids], "quit_scene": 0|1 (default 0), "deliver"}."""
    body = await _body(request)
    return await sandbox.quit_group(
        request.match_info["tenant"], _str(body, "chat_id"), body.get("members", []),
        quit_scene=body.get("quit_scene", 0), deliver=_deliver(body))


async def group_change(sandbox: Sandbox, request: web.Request) -> Any:
    """{"chat_id", and exactly one of "name", "notice", "owner", "deliver"}."""
    body = await _body(request)
    return await sandbox.change_group(
        request.match_info["tenant"], _str(body, "chat_id"), name=body.get("name"),
        notice=body.get("notice"), owner=body.get("owner"), deliver=_deliver(body))


async def group_dismiss(sandbox: Sandbox, request: web.Request) -> Any:
    """{"chat_id", "deliver"}."""
    body = await _body(request)
    return await sandbox.dismiss_group(request.match_info["tenant"], _str(body, "chat_id"),
                                       deliver=_deliver(body))


def _kf(simulate: Any) -> Route:
    """A kf simulation's control route (kfsim.py: its body; "deliver" false keeps the
    callback back): kf_message, kf_enter, kf_servicer_message, kf_session_change, kf_queue."""

    async def route(sandbox: Sandbox, request: web.Request) -> Any:
        body = await _body(request)
        return await simulate(sandbox, request.match_info["tenant"], body,
                              deliver=_deliver(body))

    return route


async def app_message(sandbox: Sandbox, request: web.Request) -> Any:
    """A member writes to the app: {"userid", "msgtype": "text"|"image", "content" (text),
    "image_base64" (image, optional), "msg_id" (optional, to replay one), "deliver"}."""
    body = await _body(request)
    tenant = request.match_info["tenant"]
    base = f"{request.scheme}://{request.host}/_sandbox/{tenant}/pictures"
    fields = appmsg.app_message(sandbox.tenant(tenant), sandbox.now(), body, base)
    xml, delivery = await sandbox.emit(tenant, fields, deliver=_deliver(body))
    return {"msg_id": fields["MsgId"], "media_id": fields.get("MediaId", ""),
            "pic_url": fields.get("PicUrl", ""), "xml": xml, "delivery": delivery}


async def picture(request: web.Request) -> web.Response:
    """A picture's PicUrl (WeCom's is a download link; the bot uses media/get instead)."""
    tenant = request.app[SANDBOX_KEY].tenants.get(request.match_info["tenant"])
    media = tenant.media.get(request.match_info["media_id"]) if tenant else None
    if media is None:
        return json_response({"error": "no such picture"}, 404)
    return web.Response(body=media.data, content_type=media.content_type)


async def kf_servicer(sandbox: Sandbox, request: web.Request) -> Any:
    return kfsim.set_servicer(sandbox, request.match_info["tenant"], await _body(request))


async def kf_state(sandbox: Sandbox, request: web.Request) -> Any:
    return sandbox.tenant(request.match_info["tenant"]).kf.snapshot()


async def state(sandbox: Sandbox, request: web.Request) -> Any:
    return sandbox.state(request.match_info["tenant"])


async def oauth_code(sandbox: Sandbox, request: web.Request) -> Any:
    """A guide opening the sidebar: WeCom redirects with a code for auth/getuserinfo."""
    body = await _body(request)
    tenant = sandbox.tenant(request.match_info["tenant"])
    try:
        userid = tenant.member(_str(body, "userid"))
    except ApiError as exc:
        raise ControlError(400, exc.errmsg) from None
    return {"code": tenant.jsapi.issue_code(userid, sandbox.now()), "userid": userid}


ROUTES: list[tuple[str, str, Route]] = [
    ("GET", "/_sandbox/calls", get_calls),
    ("DELETE", "/_sandbox/calls", clear_calls),
    ("GET", "/_sandbox/faults", list_faults),
    ("POST", "/_sandbox/faults", add_fault),
    ("DELETE", "/_sandbox/faults", clear_faults),
    ("POST", "/_sandbox/{tenant}/simulate/add_contact", add_contact),
    ("POST", "/_sandbox/{tenant}/simulate/acquisition_add", acquisition_add),
    ("POST", "/_sandbox/{tenant}/simulate/acquisition_click", acquisition_click),
    ("POST", "/_sandbox/{tenant}/simulate/acquisition_event", acquisition_event),
    ("POST", "/_sandbox/{tenant}/acquisition/quota", acquisition_quota),
    ("POST", "/_sandbox/{tenant}/simulate/event", event),
    ("POST", "/_sandbox/{tenant}/tags", tags),
    ("PATCH", "/_sandbox/{tenant}/tags/{tag_id}", edit_tag),
    ("POST", "/_sandbox/{tenant}/seed", seed),
    ("POST", "/_sandbox/{tenant}/simulate/edit_tags", edit_tags),
    ("POST", "/_sandbox/{tenant}/moment_job_polls", moment_job_polls),
    ("POST", "/_sandbox/{tenant}/revoke_token", revoke_token),
    ("POST", "/_sandbox/{tenant}/confirm_groupmsg", confirm_groupmsg),
    ("POST", "/_sandbox/{tenant}/simulate/moment_published", moment_published),
    ("GET", "/_sandbox/{tenant}/state", state),
    ("POST", "/_sandbox/{tenant}/oauth_code", oauth_code),
    ("POST", "/_sandbox/{tenant}/directory", directory),
    ("POST", "/_sandbox/{tenant}/simulate/kf_message", _kf(kfsim.kf_message)),
    ("POST", "/_sandbox/{tenant}/simulate/kf_enter", _kf(kfsim.kf_enter)),
    ("POST", "/_sandbox/{tenant}/simulate/kf_servicer_message",
     _kf(kfsim.kf_servicer_message)),
    ("POST", "/_sandbox/{tenant}/simulate/kf_session_change", _kf(kfsim.kf_session_change)),
    ("POST", "/_sandbox/{tenant}/simulate/kf_queue", _kf(kfsim.kf_queue)),
    ("POST", "/_sandbox/{tenant}/kf/servicers", kf_servicer),
    ("GET", "/_sandbox/{tenant}/kf", kf_state),
    ("POST", "/_sandbox/{tenant}/simulate/app_message", app_message),
    ("POST", "/_sandbox/clock", clock),
    ("POST", "/_sandbox/{tenant}/transfers/settle", settle_transfers),
    ("POST", "/_sandbox/{tenant}/simulate/transfer_refused", refuse_transfer),
    ("POST", "/_sandbox/{tenant}/transfers/limit", transfer_limit),
    ("POST", "/_sandbox/{tenant}/simulate/group_create", group_create),
    ("POST", "/_sandbox/{tenant}/simulate/group_join", group_join),
    ("POST", "/_sandbox/{tenant}/simulate/group_join_way", group_join_way),
    ("POST", "/_sandbox/{tenant}/simulate/group_quit", group_quit),
    ("POST", "/_sandbox/{tenant}/simulate/group_change", group_change),
    ("POST", "/_sandbox/{tenant}/simulate/group_dismiss", group_dismiss),
]


def add_routes(router: web.UrlDispatcher) -> None:
    """Control routes have no authentication: the sandbox is a local test double only."""
    for method, path, route in ROUTES:
        router.add_route(method, path, _view(route))
    router.add_route("GET", "/_sandbox/{tenant}/pictures/{media_id}", picture)
