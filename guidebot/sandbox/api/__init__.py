"""The WeCom API paths the sandbox implements, each a handler taking an ApiCall."""

from __future__ import annotations

from guidebot.sandbox.api import (
    contact_way,
    contacts,
    directory,
    groupchat,
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
from guidebot.sandbox.api.base import ApiCall, Handler, Upload

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
}
# FACTS §3.7: app messages are "not counted in base API frequency".
UNMETERED = frozenset({"message/send"})
# Calls answered after the sandbox settles the tenant's due transfers (and delivers their
# callbacks): 客户继承 completes by time, whichever call comes first (FACTS-next §D).
SETTLE_TRANSFERS_FIRST = frozenset(transfer.ROUTES)

__all__ = ["ROUTES", "SETTLE_TRANSFERS_FIRST", "UNMETERED", "ApiCall", "Handler", "Upload"]
