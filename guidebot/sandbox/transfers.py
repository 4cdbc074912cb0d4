"""客户继承 state: customer transfers from a handover member to a takeover member, on-job
(在职继承) or resigned (离职继承), their 24-hour wait and how they end (FACTS-next §D)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from guidebot.sandbox import errors
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.models import JSON, Follow

if TYPE_CHECKING:  # the tenant holds a TransferBook
    from guidebot.sandbox.tenant import TenantState

log = logging.getLogger(__name__)

# transfer_result statuses (FACTS-next §D): 1 接替完毕, 2 等待接替, 3 客户拒绝,
# 4 接替成员客户达到上限, 5 无接替记录
DONE, WAITING, REFUSED, LIMIT_EXCEEDED, NO_RECORD = 1, 2, 3, 4, 5
TAKEOVER_DELAY_S = 24 * 3600  # FACTS-next §D: the takeover completes automatically after 24 h
WINDOW_S = 90 * 86400  # FACTS-next §D: each customer at most 2 transfers within 90 days
MAX_IN_WINDOW = 2
# A refused (or limit-exceeded) transfer counts toward the 2-in-90-days rule like a finished
# one: not in FACTS (assumed; the conservative reading: it was a transfer all the same).
COUNTED = frozenset({DONE, REFUSED, LIMIT_EXCEEDED})
FAIL_REASONS = {"customer_refused": REFUSED, "customer_limit_exceed": LIMIT_EXCEEDED}
# [mem] follow_user.add_way 202 管理员/负责人分配: not in FACTS (assumed) for a takeover's follow
ADD_WAY_TRANSFER = 202
CONTACT_EVENT = "change_external_contact"


@dataclass(slots=True)
class Transfer:
    handover: str
    takeover: str
    external_userid: str
    resigned: bool  # 离职继承
    started: int
    takeover_time: int  # the automatic takeover time while waiting, when it completed after
    status: int = WAITING


@dataclass
class TransferBook:
    by_customer: dict[str, list[Transfer]] = field(default_factory=dict)  # oldest first
    pending: dict[tuple[str, str], Transfer] = field(default_factory=dict)  # by follow
    # (resigned, handover, takeover) → external_userid → that pair's latest transfer
    by_pair: dict[tuple[bool, str, str], dict[str, Transfer]] = field(default_factory=dict)
    full: set[str] = field(default_factory=set)  # members whose customer count is at the limit
    resigned_at: dict[str, int] = field(default_factory=dict)  # userid → sandbox time (s)

    def all(self) -> Iterator[Transfer]:
        for transfers in self.by_customer.values():
            yield from transfers

    def to_json(self) -> JSON:
        return {"transfers": [asdict(t) for t in self.all()], "full": sorted(self.full),
                "resigned_at": dict(self.resigned_at)}


def note_resignations(tenant: TenantState, now: float) -> None:
    """Remember when members resigned (status 5 or deleted) for get_unassigned_list's
    dimission_time, and forget members who are back."""
    book, directory = tenant.transfers, tenant.directory
    for userid in [*directory.members, *directory.removed]:
        if directory.is_resigned(userid):
            book.resigned_at.setdefault(userid, int(now))
        else:
            book.resigned_at.pop(userid, None)


def check_takeover(tenant: TenantState, handover: str, takeover: str) -> None:
    """Errors that answer the whole request (FACTS-next §D)."""
    if handover == takeover:
        raise ApiError(errors.SAME_HANDOVER_TAKEOVER)
    # FACTS-next §D: 40098 for a takeover member that is not there or not active; answered
    # for the whole request, as the sandbox answers a bad userid (60111, 40003) elsewhere.
    if not tenant.directory.is_active(takeover):
        raise ApiError(errors.TAKEOVER_INACTIVE, f"takeover member {takeover} is not active")


def start(tenant: TenantState, handover: str, takeover: str, external_userid: str, *,
          resigned: bool, now: float) -> int:
    """Start one customer's transfer; its per-customer errcode (0: started, not finished)."""
    errcode = _refusal(tenant, handover, takeover, external_userid, now)
    if errcode:
        return errcode
    book = tenant.transfers
    transfer = Transfer(handover, takeover, external_userid, resigned, int(now),
                        int(now) + TAKEOVER_DELAY_S)
    book.by_customer.setdefault(external_userid, []).append(transfer)
    book.pending[(handover, external_userid)] = transfer
    book.by_pair.setdefault((resigned, handover, takeover), {})[external_userid] = transfer
    return 0


def _refusal(tenant: TenantState, handover: str, takeover: str, external_userid: str,
             now: float) -> int:
    book = tenant.transfers
    if external_userid not in tenant.customers:
        return errors.INVALID_EXTERNAL_USERID
    if (handover, external_userid) not in tenant.follows:
        return errors.NOT_FOLLOWER
    if (handover, external_userid) in book.pending:
        return errors.CUSTOMER_IN_TRANSFER
    earlier = book.by_customer.get(external_userid, [])
    # Another follower's transfer of the same customer is waiting: not in FACTS (assumed 40100).
    if any(t.status == WAITING for t in earlier):
        return errors.TRANSFER_IN_PROGRESS
    # FACTS-next §D for on-job transfers; for resigned ones only an SDK's javadoc says so
    # (unconfirmed), applied to both all the same.
    recent = [t for t in earlier if t.status in COUNTED and t.started > now - WINDOW_S]
    if len(recent) >= MAX_IN_WINDOW:
        return errors.TRANSFER_TOO_OFTEN
    if takeover in book.full:
        return errors.TAKEOVER_FULL
    return 0


def settle(tenant: TenantState, now: float) -> list[JSON]:
    """Complete every waiting transfer whose takeover time has come; the callback fields of
    those to deliver (del_external_contact, Source DELETE_BY_TRANSFER, for on-job ones)."""
    book = tenant.transfers
    due = sorted((t for t in book.pending.values() if t.takeover_time <= now),
                 key=lambda t: t.takeover_time)
    callbacks = []
    for transfer in due:
        del book.pending[(transfer.handover, transfer.external_userid)]
        if _complete(tenant, transfer) and not transfer.resigned:
            callbacks.append({
                "CreateTime": transfer.takeover_time, "Event": CONTACT_EVENT,
                "ChangeType": "del_external_contact", "UserID": transfer.handover,
                "ExternalUserID": transfer.external_userid, "Source": "DELETE_BY_TRANSFER"})
    # Not in FACTS (assumed): a resigned member's customers move without a callback; the
    # member has left and WeCom documents no event for 离职继承.
    return callbacks


def _complete(tenant: TenantState, transfer: Transfer) -> bool:
    old = tenant.drop_follow(transfer.handover, transfer.external_userid)
    if old is None:  # the relation ended while waiting: not in FACTS (assumed status 5)
        transfer.status, transfer.takeover_time = NO_RECORD, 0
        return False
    if (transfer.takeover, transfer.external_userid) not in tenant.follows:
        # No add_external_contact callback (not confirmed in FACTS-next §D); remark,
        # description and tags go along, state does not: not in FACTS (assumed).
        tenant.put_follow(Follow(transfer.takeover, transfer.external_userid,
                                 transfer.takeover_time, remark=old.remark,
                                 description=old.description, add_way=ADD_WAY_TRANSFER,
                                 tag_ids=old.tag_ids))
    transfer.status = DONE
    log.info("tenant %s: a customer transferred from %s to %s", tenant.id, transfer.handover,
             transfer.takeover)
    return True


def refuse(tenant: TenantState, external_userid: str, takeover: str, reason: object) -> JSON:
    """The customer refuses a waiting on-job transfer (or the takeover's limit is reached):
    the handover keeps them; returns the transfer_fail callback fields (FACTS-next §D)."""
    if not isinstance(reason, str) or reason not in FAIL_REASONS:
        raise ControlError(400, f"reason must be one of {', '.join(FAIL_REASONS)}")
    found = [t for t in tenant.transfers.by_customer.get(external_userid, [])
             if t.status == WAITING and t.takeover == takeover and not t.resigned]
    if not found:
        raise ControlError(404, f"no waiting on-job transfer of {external_userid} to {takeover}")
    [transfer] = found  # one waiting transfer per customer (40100)
    del tenant.transfers.pending[(transfer.handover, external_userid)]
    # takeover_time of a failed transfer: not in FACTS (assumed 0)
    transfer.status, transfer.takeover_time = FAIL_REASONS[reason], 0
    return {"Event": CONTACT_EVENT, "ChangeType": "transfer_fail", "FailReason": reason,
            "UserID": takeover, "ExternalUserID": external_userid}


def results(tenant: TenantState, handover: str, takeover: str, *, resigned: bool) -> list[JSON]:
    pair = tenant.transfers.by_pair.get((resigned, handover, takeover), {})
    return [{"external_userid": t.external_userid, "status": t.status,
             "takeover_time": t.takeover_time} for t in pair.values()]


def unassigned(tenant: TenantState) -> list[JSON]:
    """Every follow of every resigned member that no transfer is waiting on (finished ones
    moved the follow away)."""
    book, directory = tenant.transfers, tenant.directory
    return [{"handover_userid": userid, "external_userid": follow.external_userid,
             # 0 when the sandbox never saw the resignation: not in FACTS (assumed)
             "dimission_time": book.resigned_at.get(userid, 0)}
            for userid in tenant.members if directory.is_resigned(userid)
            for follow in tenant.follows_of_member(userid)
            if (userid, follow.external_userid) not in book.pending]


def set_full(tenant: TenantState, userid: str, full: bool) -> JSON:
    """Mark a member's customer count as at the limit: new transfers to them answer 40099."""
    if full:
        tenant.transfers.full.add(userid)
    else:
        tenant.transfers.full.discard(userid)
    return {"userid": userid, "full": full}
