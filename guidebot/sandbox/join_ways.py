"""客户群「加入群聊」ways (群活码) the sandbox keeps per tenant, and a customer joining a group
through one. NOT in FACTS: the fields follow public third-party summaries of WeCom's doc
(scene 1 小程序插件 | 2 二维码插件, remark ≤ 30, auto_create_room, room_base_name,
room_base_id, chat_id_list of 1–5 groups, state ≤ 30; get_join_way answers them with the
qr_code), all assumed. A join through a way is a QR join (JoinScene 3, groupchat/get
join_scene 3) whose member carries the way's state in groupchat/get (assumed)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from guidebot.sandbox import errors, groups, ids, params
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.models import JSON

if TYPE_CHECKING:
    from guidebot.sandbox.tenant import TenantState

log = logging.getLogger(__name__)

STATE_MAX_CHARS = 30  # assumed, as add_contact_way's
REMARK_MAX_CHARS = 30  # assumed
CHATS_MAX = 5  # chat_id_list: 1–5 (assumed)
QR_BASE = "https://sandbox.invalid/groupqr/"  # .invalid: an image the sandbox never serves
QR_JOIN = 3  # the callback's JoinScene for a QR join (groups.JOIN_SCENES)


@dataclass
class JoinWay:
    config_id: str
    scene: int
    remark: str
    auto_create_room: int
    room_base_name: str
    room_base_id: int
    chat_id_list: list[str]
    state: str
    qr_code: str


@dataclass
class JoinWayBook:
    ways: dict[str, JoinWay] = field(default_factory=dict)  # by config_id

    def to_json(self) -> list[JSON]:
        return [asdict(way) for way in self.ways.values()]


def _fields(tenant: TenantState, body: Mapping[str, Any]) -> dict[str, Any]:
    """add_join_way's fields, checked: every group must be a live group of the tenant (an
    unknown or dismissed one answers 40050, assumed)."""
    chats = params.str_list(body, "chat_id_list", max_items=CHATS_MAX)
    if not chats or len(set(chats)) != len(chats):
        raise ApiError(errors.INVALID_PARAM, "chat_id_list must name 1 to 5 groups, once each")
    for chat_id in chats:
        group = tenant.groups.chats.get(chat_id)
        if group is None or group.dismissed:
            raise ApiError(errors.INVALID_CHAT_ID, f"chatid not found: {chat_id}")
    auto = params.integer(body, "auto_create_room", 0, low=0, high=1)
    return {"scene": params.integer(body, "scene", 0, low=1, high=2),
            "remark": params.text(body, "remark", max_chars=REMARK_MAX_CHARS),
            "auto_create_room": auto,
            "room_base_name": params.text(body, "room_base_name") if auto else "",
            "room_base_id": (params.integer(body, "room_base_id", 0, low=0, high=2**31 - 1)
                             if auto else 0),
            "chat_id_list": list(chats),
            "state": params.text(body, "state", max_chars=STATE_MAX_CHARS)}


def add(tenant: TenantState, body: Mapping[str, Any]) -> str:
    config_id = ids.config_id()
    fields = _fields(tenant, body)
    # scene 2 (二维码插件) has a QR code; scene 1 (小程序插件) none (assumed)
    qr_code = QR_BASE + config_id if fields["scene"] == 2 else ""
    tenant.join_ways.ways[config_id] = JoinWay(config_id=config_id, qr_code=qr_code, **fields)
    log.info("tenant %s: join way %s added for %d groups", tenant.id, config_id,
             len(fields["chat_id_list"]))
    return config_id


def find(tenant: TenantState, config_id: str) -> JoinWay:
    way = tenant.join_ways.ways.get(config_id)
    if way is None:  # the code for an unknown config_id is not known (assumed 40058)
        raise ApiError(errors.INVALID_PARAM, f"invalid config_id {config_id}")
    return way


def update(tenant: TenantState, config_id: str, body: Mapping[str, Any]) -> None:
    """update_join_way replaces every field (the sandbox's reading: the body is add's with the
    config_id; whether WeCom keeps a field left out is not known)."""
    way = find(tenant, config_id)
    for key, value in _fields(tenant, body).items():
        setattr(way, key, value)
    log.info("tenant %s: join way %s updated", tenant.id, config_id)


def delete(tenant: TenantState, config_id: str) -> None:
    find(tenant, config_id)
    del tenant.join_ways.ways[config_id]
    log.info("tenant %s: join way %s deleted", tenant.id, config_id)


def join(tenant: TenantState, now: float, config_id: object, members: object) -> JSON:
    """Customers scan a way's QR code: they join its first live group (the sandbox caps no
    group, so auto_create_room never makes one), by QR (JoinScene 3) with the way's state;
    returns the update/add_member callback fields."""
    if not isinstance(config_id, str) or config_id not in tenant.join_ways.ways:
        raise ControlError(404, f"no join way {config_id!r}")
    way = tenant.join_ways.ways[config_id]
    live = [c for c in way.chat_id_list
            if c in tenant.groups.chats and not tenant.groups.chats[c].dismissed]
    if not live:
        raise ControlError(400, f"join way {config_id} has no live group")
    return groups.join(tenant, now, live[0], members, QR_JOIN, state=way.state)
