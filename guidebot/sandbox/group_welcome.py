"""入群欢迎语素材: group welcome templates the corp keeps for group owners to apply in the client
(FACTS-next §C.4). The sandbox stores them and pushes nothing to groups: the API sends no
message, and how a template binds to a group is unconfirmed (FACTS-next §C.4, §G)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guidebot.sandbox import errors, params
from guidebot.sandbox.attachments import check_attachments
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON, GroupWelcomeTemplate
from guidebot.sandbox.tenant import TenantState

TEMPLATES_MAX = 100  # FACTS-next §C.4: at most 100 per corp (41055)
TEXT_MAX_BYTES = 3000  # FACTS-next §C.4
LINK_TITLE_MAX_BYTES = 128  # FACTS-next §C.4
LINK_DESC_MAX_BYTES = 512  # FACTS-next §C.4
# miniprogram.title ≤ 64 B (FACTS-next §C.4) is checked by attachments.py, as for welcome
# messages (40058).
KINDS = ("image", "link", "miniprogram", "file", "video")  # FACTS-next §C.4
NOTIFY_DEFAULT = 1  # FACTS-next §C.4: notify 0/1, default 1
URL_SCHEMES = ("http://", "https://")


def caller(tenant: TenantState, body: Mapping[str, Any]) -> int:
    """The app a call comes from: its `agentid` (a positive integer, else 40056 as message/send
    answers a bad one), or the tenant's own app when the request names none: not in FACTS
    (assumed)."""
    value = body.get("agentid")
    if value is None or value == "":
        return tenant.settings.agent_id
    if isinstance(value, bool) or not str(value).isdigit():
        raise ApiError(errors.INVALID_AGENTID, f"invalid agentid {value!r}")
    return int(value)


def content(tenant: TenantState, body: Mapping[str, Any], now: float) -> tuple[str, JSON]:
    """The text and the one attachment ({kind: object}, or {}) of an add or edit request.

    FACTS-next §C.4: WeCom uses one attachment type, in an unconfirmed priority order; the
    sandbox refuses two kinds with 40058 so callers send one (assumed). Each attachment gets
    the welcome message checks (attachments.py: media ids this tenant uploaded as that type
    within 3 days, 40007 or 41065; link title and url; mini-program title ≤ 64 B, appid, page,
    pic_media_id), then the template's own limits. Text or an attachment must be given (44004
    as for welcome messages; assumed). `%NICKNAME%` is kept as is: WeCom fills it in."""
    text = params.text(params.obj(body, "text"), "content")
    params.within_bytes(text, "text.content", TEXT_MAX_BYTES, errors.MESSAGE_TOO_LARGE)
    given = [kind for kind in KINDS if body.get(kind) is not None]
    if len(given) > 1:
        raise ApiError(errors.INVALID_PARAM,
                       f"one attachment kind at most, not {', '.join(given)}")
    attachment = {kind: dict(params.obj(body, kind)) for kind in given}
    for kind, item in attachment.items():
        check_attachments(tenant, [{"msgtype": kind, kind: item}], now)
        if kind == "image" and not item.get("media_id"):
            _check_pic_url(item["pic_url"])
        elif kind == "link":
            params.within_bytes(item["title"], "link.title", LINK_TITLE_MAX_BYTES)
            params.within_bytes(params.text(item, "desc"), "link.desc", LINK_DESC_MAX_BYTES)
    if not text and not attachment:
        raise ApiError(errors.TEXT_EMPTY, "text and attachments are both empty")
    return text, attachment


def _check_pic_url(url: str) -> None:
    """FACTS-next §C.4: image.pic_url comes from media/uploadimg, which the sandbox does not
    emulate; it takes any http(s) URL instead (40058 otherwise)."""
    if not url.startswith(URL_SCHEMES):
        raise ApiError(errors.INVALID_PARAM, "invalid image.pic_url: not an http(s) URL")


def find(tenant: TenantState, template_id: str) -> GroupWelcomeTemplate:
    """A stored template, or GROUP_WELCOME_NOT_FOUND (40058, assumed)."""
    template = tenant.group_welcome_templates.get(template_id)
    if template is None:
        raise ApiError(errors.GROUP_WELCOME_NOT_FOUND, f"invalid template_id {template_id}")
    return template


def editable(tenant: TenantState, template_id: str, body: Mapping[str, Any]
             ) -> GroupWelcomeTemplate:
    """A template the calling app may edit or delete: one it created (FACTS-next §C.4), else
    41058. An agentid other than the creator's is read as another app of the corp calling, so
    edit and del answer 41058 for it, not message/send's 40056 (assumed)."""
    template = find(tenant, template_id)
    if caller(tenant, body) != template.agentid:
        raise ApiError(errors.GROUP_WELCOME_NOT_EDITABLE)
    return template


def fields(template: GroupWelcomeTemplate) -> JSON:
    """The content group_welcome_template/get answers: text (when there is any) and the
    attachment, as they were given."""
    text = {"text": {"content": template.text}} if template.text else {}
    return {**text, **template.attachment}


def to_json(template: GroupWelcomeTemplate) -> JSON:
    """The state view of a template."""
    return {"template_id": template.template_id, **fields(template), "notify": template.notify,
            "agentid": template.agentid, "create_time": template.create_time}
