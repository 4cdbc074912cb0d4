"""客户群继承: a customer group's ownership handed to a new owner, on-job (the owner is employed,
groupchat/onjob_transfer) or resigned (离职继承, groupchat/transfer), FACTS-next §C.6.

An on-job transfer changes the owner at once; a resigned one leaves the group 离职继承中
(groupchat/list status 2) for 24 hours on the sandbox clock, then the heir owns it (status 3).
WeCom's docs do not say when the new owner takes over: both timings are not in FACTS
(assumed; the 24 hours are those of 客户继承, FACTS-next §D)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from guidebot.sandbox import errors, groups
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.groups import Group
from guidebot.sandbox.models import JSON

if TYPE_CHECKING:  # the tenant holds the GroupBook
    from guidebot.sandbox.tenant import TenantState

log = logging.getLogger(__name__)

INHERIT_DELAY_S = 24 * 3600  # not in FACTS (assumed, as 客户继承's 24 hours)
DAILY_MAX = 300  # FACTS-next §C.6: at most 300 groups a day from one person
WINDOW_S = 90 * 86400  # FACTS-next §C.6: on-job, each group at most 2 transfers in 90 days
MAX_IN_WINDOW = 2


def check_new_owner(tenant: TenantState, new_owner: str) -> None:
    """FACTS-next §C.6: the new owner has 客户联系, is real-name and activated; the sandbox
    asks for an active member who has not resigned (as transfers.check_takeover does). The
    whole request answers 40098, the takeover rule's code of the transfer APIs: not in FACTS
    (assumed)."""
    directory = tenant.directory
    if directory.is_resigned(new_owner) or not directory.is_active(new_owner):
        raise ApiError(errors.TAKEOVER_INACTIVE, f"new_owner {new_owner} is not active")


def transfer(tenant: TenantState, chat_ids: list[str], new_owner: str, *, resigned: bool,
             now: float) -> tuple[list[JSON], list[JSON]]:
    """Transfer each chat in turn; (failed_chat_list, the callback fields to deliver now)."""
    failed, callbacks = [], []
    for chat_id in chat_ids:
        group = tenant.groups.chats.get(chat_id)
        errcode = _refusal(tenant, group, new_owner, resigned=resigned, now=now)
        if errcode:
            failed.append({"chat_id": chat_id, "errcode": errcode,
                           "errmsg": errors.MESSAGES.get(errcode, "error")})
            continue
        assert group is not None  # _refusal answered 90501 otherwise
        tenant.groups.handed_over.setdefault(group.owner, []).append(int(now))
        if resigned:
            group.inheritance, group.heir = groups.INHERITING, new_owner
            group.inherit_due = int(now) + INHERIT_DELAY_S
        else:
            group.onjob_transfers.append(int(now))
            callbacks.append(_take_over(group, new_owner, now))
    return failed, callbacks


def _refusal(tenant: TenantState, group: Group | None, new_owner: str, *, resigned: bool,
             now: float) -> int:
    """One chat's errcode (FACTS-next §C.6 unless marked), 0 when it may be transferred."""
    # A dismissed group is 非客户群 like an unknown chat_id: not in FACTS (assumed).
    if group is None or group.dismissed:
        return errors.NOT_CUSTOMER_GROUP
    owner_left = tenant.directory.is_resigned(group.owner)
    if resigned:
        if group.inheritance == groups.INHERITING:
            return errors.GROUP_INHERITING
        if not owner_left:
            # 90508 while the heir of a finished 离职继承 owns the group, else 90500
            inherited = group.inheritance == groups.INHERITED and group.owner == group.heir
            return errors.GROUP_INHERITED if inherited else errors.OWNER_NOT_RESIGNED
    elif owner_left:
        return errors.OWNER_RESIGNED
    if group.owner == new_owner:
        return errors.SAME_GROUP_OWNER
    # FACTS-next §C.6 says so for on-job transfers; the sandbox counts on-job ones only.
    recent = [t for t in group.onjob_transfers if t > now - WINDOW_S]
    if not resigned and len(recent) >= MAX_IN_WINDOW:
        return errors.GROUP_TRANSFER_TOO_OFTEN
    if _today(tenant, group.owner, now) >= DAILY_MAX:
        return errors.GROUP_TRANSFER_DAILY_LIMIT
    return 0


def _today(tenant: TenantState, owner: str, now: float) -> int:
    """How many of `owner`'s groups were transferred on the sandbox clock's day (in the
    tenant's time zone): "a day" read as a natural day, not in FACTS (assumed)."""
    zone = tenant.settings.tz
    today = datetime.fromtimestamp(now, zone).date()
    return sum(1 for at in tenant.groups.handed_over.get(owner, ())
               if datetime.fromtimestamp(at, zone).date() == today)


def _take_over(group: Group, new_owner: str, now: float) -> JSON:
    """The new owner owns the group, joining it first if not in it. No add_member is called
    back for that join: WeCom documents only change_owner here; not in FACTS (assumed)."""
    if new_owner not in group.members:
        groups.enter(group, new_owner, now)
    group.owner = new_owner
    return groups.updated(group, "change_owner")


def settle(tenant: TenantState, now: float) -> list[JSON]:
    """Finish every 离职继承 whose 24 hours are up: the heir owns the group (status 3);
    the callback fields (change_owner, at the takeover time) of each. A group dismissed while
    waiting is not taken over and calls nothing back: not in FACTS (assumed)."""
    due = sorted((g for g in tenant.groups.chats.values()
                  if g.inheritance == groups.INHERITING and g.inherit_due <= now),
                 key=lambda g: g.inherit_due)
    callbacks = []
    for group in due:
        group.inheritance = groups.INHERITED
        if group.dismissed:
            continue
        fields = _take_over(group, group.heir, group.inherit_due)
        callbacks.append({"CreateTime": group.inherit_due, **fields})
        log.info("tenant %s: group %s inherited by %s", tenant.id, group.chat_id, group.heir)
    return callbacks
