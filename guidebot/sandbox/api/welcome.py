"""externalcontact/send_welcome_msg: once per WelcomeCode, within the window after issue."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.attachments import check_attachments
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, WelcomeSent

log = logging.getLogger(__name__)

# Not in FACTS for welcome messages: the sandbox applies add_msg_template's 4000-byte text limit.
TEXT_MAX_BYTES = 4000


def send_welcome_msg(call: ApiCall) -> JSON:
    code = params.text(call.body, "welcome_code", required=True)
    issued = call.tenant.welcome_codes.get(code)
    # FACTS §3.6: an unknown, reused or late code all answer 41051.
    late = issued is not None and call.now > issued.issued_at + call.options.welcome_window_s
    if issued is None or issued.used or late:
        raise ApiError(errors.WELCOME_NOT_ALLOWED)
    content = params.text(params.obj(call.body, "text"), "content")
    params.within_bytes(content, "text.content", TEXT_MAX_BYTES, errors.MESSAGE_TOO_LARGE)
    attachments = check_attachments(call.tenant, call.body.get("attachments"), call.now)
    if not content and not attachments:
        raise ApiError(errors.TEXT_EMPTY, "text and attachments are both empty")
    issued.used = True
    call.tenant.welcomes_sent.append(WelcomeSent(
        code, issued.userid, issued.external_userid, content, attachments, call.now))
    log.info("tenant %s: welcome message sent by %s", call.tenant.id, issued.userid)
    return ok()


ROUTES: dict[str, Handler] = {"externalcontact/send_welcome_msg": send_welcome_msg}
