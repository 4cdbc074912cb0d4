"""客户群继承 APIs (FACTS-next §C.6): groupchat/transfer (the owner has resigned) and
groupchat/onjob_transfer (the owner is employed). Due 离职继承 settle before these and the
other groupchat APIs are answered (cgi.py, Sandbox.settle_transfers)."""

from __future__ import annotations

from guidebot.sandbox import errors, group_transfers, params
from guidebot.sandbox.api.base import CALLBACKS_KEY, ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

CHATS_MAX = 100  # FACTS-next §C.6: 1-100 chats per call


def _transfer(call: ApiCall, *, resigned: bool) -> JSON:
    """Whole-request errors first (40058 for the chat list, 40003 for a malformed new_owner,
    40098 for one who cannot own groups), then each chat's errcode in failed_chat_list; an
    on-job transfer's change_owner callbacks go out before the answer."""
    chat_ids = params.str_list(call.body, "chat_id_list", max_items=CHATS_MAX)
    if not chat_ids:
        raise ApiError(errors.INVALID_PARAM, "invalid chat_id_list: missing")
    new_owner = call.tenant.member(params.text(call.body, "new_owner", required=True))
    group_transfers.check_new_owner(call.tenant, new_owner)
    failed, callbacks = group_transfers.transfer(call.tenant, chat_ids, new_owner,
                                                 resigned=resigned, now=call.now)
    return ok(failed_chat_list=failed, **{CALLBACKS_KEY: callbacks})


def transfer(call: ApiCall) -> JSON:
    """离职继承: the groups of a member who has resigned."""
    return _transfer(call, resigned=True)


def onjob_transfer(call: ApiCall) -> JSON:
    """在职继承: the groups of a member who is employed."""
    return _transfer(call, resigned=False)


ROUTES: dict[str, Handler] = {
    "externalcontact/groupchat/transfer": transfer,
    "externalcontact/groupchat/onjob_transfer": onjob_transfer,
}
