"""企业群发 to customer groups: add_msg_template with chat_type "group" (FACTS §3.5), its
request checks and the groups the sender's one task goes to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guidebot.sandbox import errors, params
from guidebot.sandbox.errors import ApiError

if TYPE_CHECKING:
    from guidebot.sandbox.api.base import ApiCall
    from guidebot.sandbox.groups import Group

MAX_CHATS = 2000  # FACTS: chat_id_list holds ≤ 2000 chat ids (client ≥ 4.1.10)


def recipients(call: ApiCall) -> tuple[str, list[str], list[str]]:
    """The sender, the chats their task goes to and the fail_list. allow_select is accepted
    and has no effect: the sandbox's owner confirms the whole task (not in FACTS, sandbox's
    choice)."""
    # FACTS: sender is required for chat_type "group". An unknown member is handled as the
    # single path does (tenant.member: a malformed userid answers 40003, others are created).
    sender = call.tenant.member(params.text(call.body, "sender", required=True))
    if params.str_list(call.body, "external_userid"):
        raise ApiError(errors.INVALID_PARAM, "external_userid is for chat_type single only")
    # Not in FACTS, sandbox's choice: a group message has no tag filter (tags are customers').
    if params.obj(call.body, "tag_filter"):
        raise ApiError(errors.INVALID_PARAM, "tag_filter is for chat_type single only")
    wanted = params.str_list(call.body, "chat_id_list", max_items=MAX_CHATS)
    chats = call.tenant.groups.chats
    found: list[str] = []
    fail_list: list[str] = []
    # Not in FACTS, sandbox's choice: no chat_id_list means every live (not dismissed) group
    # the sender owns, in creation order.
    if not wanted:
        found = [g.chat_id for g in chats.values() if _sendable(g, sender)]
    # Not in FACTS, sandbox's choice: a listed chat that is unknown, dismissed or not the
    # sender's goes into fail_list (a chat listed twice counts once).
    for chat_id in dict.fromkeys(wanted):
        (found if _sendable(chats.get(chat_id), sender) else fail_list).append(chat_id)
    # Not in FACTS, sandbox's choice: no template is made when no group would receive it.
    if not found:
        raise ApiError(errors.INVALID_PARAM, "no group to send to")
    return sender, found, fail_list


def _sendable(group: Group | None, sender: str) -> bool:
    return group is not None and not group.dismissed and group.owner == sender
