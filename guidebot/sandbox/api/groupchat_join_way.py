"""客户群「加入群聊」 APIs (群活码): groupchat/add_join_way, get_join_way, update_join_way and
del_join_way. NOT in FACTS: paths and bodies assumed from public third-party summaries of
WeCom's doc (join_ways.py)."""

from __future__ import annotations

from guidebot.sandbox import join_ways, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.models import JSON


def add_join_way(call: ApiCall) -> JSON:
    return ok(config_id=join_ways.add(call.tenant, call.body))


def get_join_way(call: ApiCall) -> JSON:
    way = join_ways.find(call.tenant, params.text(call.body, "config_id", required=True))
    return ok(join_way={"config_id": way.config_id, "scene": way.scene, "remark": way.remark,
                        "auto_create_room": way.auto_create_room,
                        "room_base_name": way.room_base_name,
                        "room_base_id": way.room_base_id,
                        "chat_id_list": list(way.chat_id_list), "qr_code": way.qr_code,
                        "state": way.state})


def update_join_way(call: ApiCall) -> JSON:
    join_ways.update(call.tenant, params.text(call.body, "config_id", required=True),
                     call.body)
    return ok()


def del_join_way(call: ApiCall) -> JSON:
    join_ways.delete(call.tenant, params.text(call.body, "config_id", required=True))
    return ok()


ROUTES: dict[str, Handler] = {
    "externalcontact/groupchat/add_join_way": add_join_way,
    "externalcontact/groupchat/get_join_way": get_join_way,
    "externalcontact/groupchat/update_join_way": update_join_way,
    "externalcontact/groupchat/del_join_way": del_join_way,
}
