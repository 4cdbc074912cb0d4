"""The WeCom API paths the sandbox implements, each a handler taking an ApiCall."""

from __future__ import annotations

from guidebot.sandbox.api import (
    contact_way,
    contacts,
    directory,
    groupmsg,
    groupmsg_followup,
    idconvert,
    jsapi,
    kf,
    media,
    message,
    moments,
    tags,
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
}
# FACTS §3.7: app messages are "not counted in base API frequency".
UNMETERED = frozenset({"message/send"})

__all__ = ["ROUTES", "UNMETERED", "ApiCall", "Handler", "Upload"]
