"""企业群发 APIs: add_msg_template, get_groupmsg_list_v2, get_groupmsg_task, send_result."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, groupmsg_groups, ids, massmsg, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.attachments import check_attachments
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, Follow, GroupMsgTask, MsgTemplate

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10_000  # FACTS §3.5
TEXT_MAX_BYTES = 4000  # FACTS §3.5


def add_msg_template(call: ApiCall) -> JSON:
    chat_type = _chat_type(call)
    content = params.text(params.obj(call.body, "text"), "content")
    params.within_bytes(content, "text.content", TEXT_MAX_BYTES, errors.MESSAGE_TOO_LARGE)
    attachments = check_attachments(call.tenant, call.body.get("attachments"), call.now)
    if not content and not attachments:
        raise ApiError(errors.TEXT_EMPTY, "text and attachments are both empty")
    if chat_type == massmsg.GROUP:
        sender, chats, fail_list = groupmsg_groups.recipients(call)
        tasks = {sender: chats}
    else:
        follows, fail_list = _candidates(call)
        tasks = massmsg.assign(follows, params.obj(call.body, "tag_filter"))
    template = MsgTemplate(ids.msgid(), params.text(call.body, "sender"), int(call.now),
                           content, attachments, chat_type=chat_type)
    for userid, recipients in tasks.items():
        template.tasks[userid] = GroupMsgTask(userid, dict.fromkeys(recipients, massmsg.UNSENT))
    call.tenant.templates[template.msgid] = template
    log.info("tenant %s: %s group message %s for %d member(s)", call.tenant.id, chat_type,
             template.msgid, len(template.tasks))
    return ok(fail_list=fail_list, msgid=template.msgid)


def _chat_type(call: ApiCall) -> str:
    """The body's chat_type, "single" when not given (FACTS §3.5)."""
    chat_type = params.text(call.body, "chat_type") or massmsg.SINGLE
    # Another chat_type answers the catch-all 40058: not in FACTS, sandbox's choice.
    if chat_type not in massmsg.CHAT_TYPES:
        raise ApiError(errors.INVALID_PARAM, "chat_type must be single or group")
    return chat_type


def _candidates(call: ApiCall) -> tuple[list[Follow], list[str]]:
    """Follows that would send, and the customers no (such) member is related to: found
    through the relation indexes, O(recipients) whatever the size of the corp."""
    wanted = params.str_list(call.body, "external_userid", max_items=MAX_RECIPIENTS)
    sender = params.text(call.body, "sender")
    follows: list[Follow] = []
    fail_list: list[str] = []
    if sender:
        member = call.tenant.member(sender)
        if not wanted:
            return call.tenant.follows_of_member(member), []
        relations = call.tenant.follows
        for external_userid in dict.fromkeys(wanted):
            found = relations.get((member, external_userid))
            if found is None:
                fail_list.append(external_userid)
            else:
                follows.append(found)
        return follows, fail_list
    if not wanted:
        raise ApiError(errors.INVALID_PARAM, "external_userid and sender are both empty")
    # Without a sender every member related to a listed customer gets a task (not in FACTS).
    for external_userid in dict.fromkeys(wanted):
        theirs = call.tenant.follows_of_customer(external_userid)
        follows.extend(theirs)
        if not theirs:
            fail_list.append(external_userid)
    return follows, fail_list


def _template(call: ApiCall) -> MsgTemplate:
    msgid = params.text(call.body, "msgid", required=True)
    template = call.tenant.templates.get(msgid)
    if template is None:  # FACTS names no code for an unknown msgid
        raise ApiError(errors.INVALID_PARAM, f"invalid msgid {msgid}")
    return template


def get_groupmsg_list_v2(call: ApiCall) -> JSON:
    start = params.integer(call.body, "start_time", -1, low=0, high=2**31)
    end = params.integer(call.body, "end_time", -1, low=start, high=2**31)
    chat_type = _chat_type(call)  # a template is listed for its own chat_type only
    creator = params.text(call.body, "creator")
    # API-created messages are 企业 (create_type 0): filter_type 1 (个人) matches none.
    filter_type = params.integer(call.body, "filter_type", 2, low=0, high=2)
    limit = params.integer(call.body, "limit", 50, low=1, high=100)
    found = [
        massmsg.template_json(t) for t in call.tenant.templates.values()
        if t.chat_type == chat_type and start <= t.create_time <= end
        and creator in ("", t.creator) and filter_type != 1
    ]
    chunk, next_cursor = params.page(found, params.cursor(call.body), limit)
    return ok(group_msg_list=chunk, next_cursor=next_cursor)


def get_groupmsg_task(call: ApiCall) -> JSON:
    template = _template(call)
    limit = params.integer(call.body, "limit", 500, low=1, high=1000)
    tasks = [{"userid": t.userid, "status": t.status, "send_time": t.send_time}
             for t in template.tasks.values()]
    chunk, next_cursor = params.page(tasks, params.cursor(call.body), limit)
    return ok(task_list=chunk, next_cursor=next_cursor)


def get_groupmsg_send_result(call: ApiCall) -> JSON:
    template = _template(call)
    userid = params.text(call.body, "userid", required=True)
    limit = params.integer(call.body, "limit", 500, low=1, high=1000)
    task = template.tasks.get(userid)
    group = template.chat_type == massmsg.GROUP  # FACTS: a group's items name a chat_id
    sends = [] if task is None else [
        {"external_userid": "" if group else recipient, "chat_id": recipient if group else "",
         "userid": userid, "status": status,
         "send_time": task.send_time if status == massmsg.SENT else 0}
        for recipient, status in task.recipients.items()
    ]
    chunk, next_cursor = params.page(sends, params.cursor(call.body), limit)
    return ok(send_list=chunk, next_cursor=next_cursor)


ROUTES: dict[str, Handler] = {
    "externalcontact/add_msg_template": add_msg_template,
    "externalcontact/get_groupmsg_list_v2": get_groupmsg_list_v2,
    "externalcontact/get_groupmsg_task": get_groupmsg_task,
    "externalcontact/get_groupmsg_send_result": get_groupmsg_send_result,
}
