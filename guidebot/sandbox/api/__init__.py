"""The WeCom API paths the sandbox implements, each a handler taking an ApiCall."""

from __future__ import annotations

from guidebot.sandbox.api import (
    contact_way,
    contacts,
    customer_acquisition,
    directory,
    group_welcome_template,
    groupchat,
    groupchat_join_way,
    groupchat_transfer,
    groupmsg,
    groupmsg_followup,
    idconvert,
    jsapi,
    kf,
    media,
    message,
    moments,
    tags,
    transfer,
    welcome,
)
from guidebot.sandbox.api.base import CALLBACKS_KEY, ApiCall, Handler, Upload

ROUTES: dict[str, Handler] = {
    **contacts.ROUTES,
    **tags.ROUTES,
    **contact_way.ROUTES,
    **welcome.ROUTES,
    **groupmsg.ROUTES,
    **groupmsg_followup.ROUTES,
    **moments.ROUTES,
    **message.ROUTES,
    **media.ROUTES,
    **idconvert.ROUTES,
    **jsapi.ROUTES,
    **directory.ROUTES,
    **kf.ROUTES,
    **transfer.ROUTES,
    **groupchat.ROUTES,
    **groupchat_join_way.ROUTES,
    **groupchat_transfer.ROUTES,
    **group_welcome_template.ROUTES,
    **customer_acquisition.ROUTES,
}
# FACTS §3.7: app messages are "not counted in base API frequency".
UNMETERED = frozenset({"message/send"})
# Calls answered after the sandbox settles the tenant's due transfers and group inheritances
# (and delivers their callbacks): 客户继承 completes by time, whichever call comes first
# (FACTS-next §D); so does a group's 离职继承 (not in FACTS, assumed: group_transfers.py).
SETTLE_TRANSFERS_FIRST = frozenset({*transfer.ROUTES, *groupchat.ROUTES,
                                    *groupchat_transfer.ROUTES})

__all__ = ["CALLBACKS_KEY", "ROUTES", "SETTLE_TRANSFERS_FIRST", "UNMETERED", "ApiCall",
           "Handler", "Upload"]
