"""群发 tasks: choosing recipients, and a member confirming a task in the (simulated) client."""

from __future__ import annotations

import calendar
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from guidebot.sandbox import errors, params
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.models import Follow, GroupMsgTask, MsgTemplate
from guidebot.sandbox.tenant import TenantState

log = logging.getLogger(__name__)

# Send-result statuses (FACTS §3.5 [mem]).
UNSENT, SENT, NOT_FRIEND, QUOTA_USED = 0, 1, 2, 3
SINGLE, GROUP = "single", "group"  # add_msg_template's chat_type (FACTS §3.5)
CHAT_TYPES = (SINGLE, GROUP)


def tag_lists(tag_filter: Mapping[str, Any]) -> list[set[str]]:
    """The tag_filter's group_list as sets of tag ids."""
    groups = tag_filter.get("group_list") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ApiError(errors.INVALID_PARAM, "tag_filter.group_list must be a list of objects")
    return [set(params.str_list(g, "tag_list")) for g in groups]


def assign(follows: Sequence[Follow], tag_filter: Mapping[str, Any]) -> dict[str, list[str]]:
    """Recipients per sending member, for the follows that pass the tag filter: every
    group_list entry must share a tag with the follow ([mem]: an AND of ORs, not in FACTS)."""
    wanted = tag_lists(tag_filter)
    tasks: dict[str, list[str]] = {}
    for follow in follows:
        if all(group & set(follow.tag_ids) for group in wanted):
            tasks.setdefault(follow.userid, []).append(follow.external_userid)
    return tasks


def confirm(tenant: TenantState, msgid: str, userid: str, now: float) -> GroupMsgTask:
    """The member sends their part of a 群发 task: each recipient gets status 1, 2 or 3."""
    template = tenant.templates.get(msgid)
    task = template.tasks.get(userid) if template else None
    if template is None or task is None:
        raise ControlError(404, f"no task for {userid} in group message {msgid}")
    if msgid in tenant.cancelled_msgids and task.status != SENT:
        # cancel_groupmsg_send: members who had not sent it cannot any more (their part
        # stays 未发送); what the client shows them is not in the facts.
        raise ControlError(409, f"group message {msgid} was cancelled")
    task.status, task.send_time = SENT, int(now)
    if template.chat_type == GROUP:
        _send_to_groups(tenant, task, now)
    else:
        _send_to_customers(tenant, task, now)
    log.info("tenant %s: group message task confirmed by %s", tenant.id, userid)
    return task


def _send_to_customers(tenant: TenantState, task: GroupMsgTask, now: float) -> None:
    since, quota = _period_start(tenant, now), _quota(tenant)
    for external_userid in task.recipients:
        outcome = _outcome(tenant, task.userid, external_userid, since, quota)
        task.recipients[external_userid] = outcome
        if outcome == SENT:
            tenant.received.setdefault(external_userid, []).append(task.send_time)


def _outcome(tenant: TenantState, userid: str, external_userid: str, since: float,
             quota: int) -> int:
    follow = tenant.follows.get((userid, external_userid))
    if follow is None or follow.customer_deleted:
        return NOT_FRIEND
    if received_since(tenant, external_userid, since) >= quota:
        return QUOTA_USED
    return SENT


def received_since(tenant: TenantState, external_userid: str, since: float) -> int:
    """群发 messages this customer received since `since` (the index confirm() keeps)."""
    return sum(1 for at in tenant.received.get(external_userid, ()) if at >= since)


def _quota(tenant: TenantState) -> int:
    return int(tenant.settings.quotas.mass_msg_per_customer.split("/")[0])


def _period_start(tenant: TenantState, now: float) -> float:
    """Start of the natural day / week / month in the tenant's time zone (quota is per period)."""
    period = tenant.settings.quotas.mass_msg_per_customer.split("/")[1]
    local = datetime.fromtimestamp(now, tenant.settings.tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        start -= timedelta(days=start.weekday())
    elif period == "month":
        start = start.replace(day=1)
    return start.timestamp()


def _send_to_groups(tenant: TenantState, task: GroupMsgTask, now: float) -> None:
    """Each chat of a chat_type "group" task: 1 when the group is live and still the confirming
    member's, else 2 (sandbox's choice, not in FACTS: FACTS's 2 names a customer who is no
    friend, not a group); 3 when the group already received this natural month as many 群发
    messages as the month has days."""
    local = datetime.fromtimestamp(now, tenant.settings.tz)
    since = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    # FACTS (unconfirmed): "每个客户群每月最多可接收条数为当月天数", a natural month in the
    # tenant's time zone (like _period_start)
    quota = calendar.monthrange(local.year, local.month)[1]
    chats = tenant.groups.chats
    for chat_id in task.recipients:
        group = chats.get(chat_id)
        if group is None or group.dismissed or group.owner != task.userid:
            task.recipients[chat_id] = NOT_FRIEND
            continue
        # Only this month's sends are kept: the index stays ≤ 31 a group (O(recipients)).
        this_month = [at for at in tenant.group_received.get(chat_id, ()) if at >= since]
        if len(this_month) >= quota:
            task.recipients[chat_id] = QUOTA_USED
        else:
            task.recipients[chat_id] = SENT
            this_month.append(task.send_time)
        tenant.group_received[chat_id] = this_month


def template_json(template: MsgTemplate) -> dict[str, Any]:
    return {
        "msgid": template.msgid, "creator": template.creator,
        "create_time": template.create_time, "create_type": 0,
        "text": {"content": template.text}, "attachments": template.attachments,
    }
