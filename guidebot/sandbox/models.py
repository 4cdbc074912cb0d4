"""Records the sandbox keeps per tenant: customers, follows, tags, channels, messages, media."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class Options:
    """Sandbox-wide behaviour knobs (not WeCom facts)."""

    welcome_window_s: float = 20.0
    delivery_timeout_s: float = 5.0  # WeCom waits 5 s for a callback answer (FACTS §1.5)
    delivery_attempts: int = 3  # "总共重试三次"; read as three attempts in all, as DESIGN does
    calls_kept: int = 10_000


@dataclass(slots=True)  # slots: a seeded base may hold a million of these
class Customer:
    external_userid: str
    name: str
    unionid: str = ""
    type: int = 1  # 1 = WeChat user
    gender: int = 0
    avatar: str = ""
    corp_name: str = ""

    def to_json(self) -> JSON:
        return {
            "external_userid": self.external_userid, "name": self.name, "type": self.type,
            "gender": self.gender, "unionid": self.unionid, "avatar": self.avatar,
            "corp_name": self.corp_name,
        }


@dataclass(slots=True)
class Follow:
    """A member (guide) ↔ customer relation; `customer_deleted` after del_follow_user."""

    userid: str
    external_userid: str
    createtime: int
    state: str = ""
    remark: str = ""
    description: str = ""
    add_way: int = 0
    tag_ids: Sequence[str] = ()  # replaced, never changed in place (shared empty default)
    customer_deleted: bool = False


@dataclass
class Tag:
    id: str
    name: str
    create_time: int
    order: int = 0
    deleted: bool = False
    by_app: bool = False  # made through add_corp_tag (the app may edit/delete it), not shown


@dataclass
class TagGroup:
    group_id: str
    group_name: str
    create_time: int
    order: int = 0
    deleted: bool = False
    tags: list[Tag] = field(default_factory=list)
    by_app: bool = False  # made through add_corp_tag, not in the console


@dataclass
class ContactWay:
    config_id: str
    body: JSON  # the add_contact_way request as given (type, scene, state, user, …)
    qr_code: str = ""


@dataclass
class WelcomeCode:
    code: str
    userid: str
    external_userid: str
    issued_at: float
    used: bool = False


@dataclass
class WelcomeSent:
    welcome_code: str
    userid: str
    external_userid: str
    text: str
    attachments: list[JSON]
    at: float


@dataclass
class GroupMsgTask:
    """One member's share of a 群发 template: recipients and their status each, customers
    (chat_type "single") or customer groups (chat_type "group")."""

    userid: str
    # external_userid (single) or chat_id (group) → status (0 未发送, 1 已发送, 2, 3)
    recipients: dict[str, int]
    status: int = 0
    send_time: int = 0


@dataclass
class MsgTemplate:
    msgid: str
    creator: str
    create_time: int
    text: str
    attachments: list[JSON]
    tasks: dict[str, GroupMsgTask] = field(default_factory=dict)
    chat_type: str = "single"  # "group": the sender's one task goes to customer groups


@dataclass
class GroupWelcomeTemplate:
    """入群欢迎语素材 (FACTS-next §C.4): its text, its one attachment and the app that made it."""

    template_id: str
    agentid: int  # the app that created it: only it may edit or delete it (41058)
    text: str  # "" when the template has none
    attachment: JSON  # {} or one of {"image" | "link" | "miniprogram" | "file" | "video": {…}}
    notify: int
    create_time: int


@dataclass
class AppMessage:
    """One message/send recipient; `dropped` when over the per-guide minute quota."""

    msgid: str
    userid: str
    msgtype: str
    content: JSON
    at: float
    dropped: bool = False


@dataclass
class Media:
    media_id: str
    type: str
    filename: str
    size: int
    created_at: int
    data: bytes = b""  # what media/get answers (uploads and pictures members send the app)
    content_type: str = "application/octet-stream"
