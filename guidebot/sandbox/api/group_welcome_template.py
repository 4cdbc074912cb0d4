"""入群欢迎语素材 APIs (FACTS-next §C.4): group_welcome_template/add, edit, get and del."""

from __future__ import annotations

import logging

from guidebot.sandbox import errors, group_welcome, ids, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, GroupWelcomeTemplate

log = logging.getLogger(__name__)


def add(call: ApiCall) -> JSON:
    """A new template; its template_id is "msg" and random characters, like FACTS-next §C.4's
    "msgXXXXXX" (the sandbox's 群发 msgid shape). The limit is checked once the request is
    valid: not in FACTS (assumed)."""
    agentid = group_welcome.caller(call.tenant, call.body)
    if agentid != call.tenant.settings.agent_id:  # as message/send checks it
        raise ApiError(errors.INVALID_AGENTID, f"invalid agentid {agentid}")
    text, attachment = group_welcome.content(call.tenant, call.body, call.now)
    notify = params.integer(call.body, "notify", group_welcome.NOTIFY_DEFAULT, low=0, high=1)
    templates = call.tenant.group_welcome_templates
    if len(templates) >= group_welcome.TEMPLATES_MAX:
        raise ApiError(errors.GROUP_WELCOME_FULL)
    template = GroupWelcomeTemplate(ids.msgid(), agentid, text, attachment, notify,
                                    int(call.now))
    templates[template.template_id] = template
    log.info("tenant %s: group welcome template %s added", call.tenant.id, template.template_id)
    return ok(template_id=template.template_id)


def edit(call: ApiCall) -> JSON:
    """Replaces the template's text and attachment with the request's (what is not given is
    gone afterwards; notify is kept): not in FACTS (assumed)."""
    template = group_welcome.editable(
        call.tenant, params.text(call.body, "template_id", required=True), call.body)
    template.text, template.attachment = group_welcome.content(call.tenant, call.body, call.now)
    return ok()


def get(call: ApiCall) -> JSON:
    """Any app of the corp may read a template: FACTS-next §C.4 limits edit and del only."""
    template = group_welcome.find(call.tenant, params.text(call.body, "template_id",
                                                           required=True))
    return ok(**group_welcome.fields(template))


def delete(call: ApiCall) -> JSON:
    template = group_welcome.editable(
        call.tenant, params.text(call.body, "template_id", required=True), call.body)
    del call.tenant.group_welcome_templates[template.template_id]
    log.info("tenant %s: group welcome template %s deleted", call.tenant.id,
             template.template_id)
    return ok()


ROUTES: dict[str, Handler] = {
    "externalcontact/group_welcome_template/add": add,
    "externalcontact/group_welcome_template/edit": edit,
    "externalcontact/group_welcome_template/get": get,
    "externalcontact/group_welcome_template/del": delete,
}
