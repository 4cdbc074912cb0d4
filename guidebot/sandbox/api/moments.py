"""客户朋友圈: add_moment_task (async job), get_moment_task_result (FACTS §3.8) and
get_moment_task, which senders published the moment (WeCom's doc "获取客户朋友圈企业发表的列表":
{moment_id, cursor, limit} → {task_list [{userid, publish_status 0 未发表 / 1 已发表}],
next_cursor}; not in the fact sheet, so its shape here is unconfirmed)."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, ids, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.attachments import require_media_of
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON
from guidebot.sandbox.tenant import is_userid

log = logging.getLogger(__name__)

STARTED, RUNNING, DONE = 1, 2, 3  # job status 1 开始, 2 进行中, 3 完成 (FACTS §3.8)
ATTACHMENT_TYPES = ("image", "video", "link")
# up to 9 images, or 1 video, or 1 link, never two kinds (FACTS §3.8; WeCom's JS-SDK
# shareToExternalMoments doc says the same of its attachments)
MOST = {"image": 9, "video": 1, "link": 1}


def _check_attachments(call: ApiCall, attachments: object) -> list[JSON]:
    if not isinstance(attachments, list) or any(
            not isinstance(a, dict) or a.get("msgtype") not in ATTACHMENT_TYPES
            or not isinstance(a.get(a["msgtype"]), dict) for a in attachments):
        raise ApiError(errors.INVALID_ATTACHMENT, "moment attachments: image, video or link")
    kinds = {a["msgtype"] for a in attachments}
    if len(kinds) > 1 or any(len(attachments) > MOST[k] for k in kinds):
        raise ApiError(errors.INVALID_ATTACHMENT,
                       "moment attachments: up to 9 images, or 1 video, or 1 link")
    for item in attachments:
        if item["msgtype"] == "link":
            params.text(item["link"], "url", required=True)
        else:
            # WeCom's doc has these media ids come from media/upload_attachment
            # (attachment_type=1); guidebot and the sandbox use media/upload's (unconfirmed
            # whether WeCom takes them)
            require_media_of(call.tenant, item["msgtype"], item[item["msgtype"]].get("media_id"),
                             call.now)
    return attachments


def add_moment_task(call: ApiCall) -> JSON:
    content = params.text(params.obj(call.body, "text"), "content")
    attachments = _check_attachments(call, call.body.get("attachments") or [])
    if not content and not attachments:
        raise ApiError(errors.TEXT_EMPTY, "text and attachments are both empty")
    visible = params.obj(call.body, "visible_range")
    senders = params.str_list(params.obj(visible, "sender_list"), "user_list")
    invalid = [u for u in senders if not is_userid(u)]
    for userid in senders:
        if is_userid(userid):
            call.tenant.member(userid)
    jobid = "job" + ids.random_text(24)
    # WeCom runs the job asynchronously; the sandbox finishes it at once, or after the number
    # of polls set through POST /_sandbox/{tenant}/moment_job_polls.
    call.tenant.moment_jobs[jobid] = {
        "status": DONE, "type": "add_moment_task", "created": call.now,
        "content": content, "attachments": attachments, "senders": senders,
        "polls_left": call.tenant.moment_job_polls, "polled": 0, "published": [],
        # FACTS §3.8 names the result fields; their inner shape ({user_list, department_list},
        # {tag_list}) is [mem] of WeCom's doc.
        "result": {"errcode": 0, "errmsg": "ok", "moment_id": "mom" + ids.random_text(24),
                   "invalid_sender_list": {"user_list": invalid, "department_list": []},
                   "invalid_external_contact_list": {"tag_list": []}}}
    log.info("tenant %s: moment task for %d sender(s)", call.tenant.id, len(senders))
    return ok(jobid=jobid)


def get_moment_task_result(call: ApiCall) -> JSON:
    jobid = params.text(call.query, "jobid") or params.text(call.body, "jobid", required=True)
    job = call.tenant.moment_jobs.get(jobid)
    if job is None:
        raise ApiError(errors.INVALID_PARAM, f"invalid jobid {jobid}")
    if job["polls_left"] > 0:  # still running: no result yet ([mem]: not in FACTS)
        job["polls_left"] -= 1
        job["polled"] += 1
        return ok(status=STARTED if job["polled"] == 1 else RUNNING, type=job["type"])
    return ok(status=job["status"], type=job["type"], result=job["result"])


def job_of_moment(jobs: dict[str, JSON], moment_id: str) -> JSON | None:
    return next((j for j in jobs.values() if j["result"].get("moment_id") == moment_id), None)


def get_moment_task(call: ApiCall) -> JSON:
    moment_id = params.text(call.body, "moment_id", required=True)
    job = job_of_moment(call.tenant.moment_jobs, moment_id)
    if job is None:
        raise ApiError(errors.INVALID_PARAM, f"invalid moment_id {moment_id}")
    tasks = [{"userid": u, "publish_status": 1 if u in job["published"] else 0}
             for u in job["senders"] if is_userid(u)]
    return ok(next_cursor="", task_list=tasks)


def publish(jobs: dict[str, JSON], moment_id: str, userid: str) -> JSON:
    """A sender publishes the moment in the client (the control route)."""
    job = job_of_moment(jobs, moment_id)
    if job is None or userid not in job["senders"]:
        raise KeyError(moment_id)
    if userid not in job["published"]:
        job["published"].append(userid)
    return {"moment_id": moment_id, "published": list(job["published"])}


ROUTES: dict[str, Handler] = {
    "externalcontact/add_moment_task": add_moment_task,
    "externalcontact/get_moment_task_result": get_moment_task_result,
    "externalcontact/get_moment_task": get_moment_task,
}
