"""One tenant's simulated corp: members, customers, relations, tags, channels and messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeGuard

from guidebot.sandbox import errors
from guidebot.sandbox.acquisition import AcquisitionLink, Quota
from guidebot.sandbox.directory import Directory
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.groups import GroupBook
from guidebot.sandbox.join_ways import JoinWayBook
from guidebot.sandbox.jsapi import JsapiState
from guidebot.sandbox.kfstate import KfState
from guidebot.sandbox.limits import MinuteWindow
from guidebot.sandbox.models import (
    JSON,
    AppMessage,
    ContactWay,
    Customer,
    Follow,
    GroupWelcomeTemplate,
    Media,
    MsgTemplate,
    Tag,
    TagGroup,
    WelcomeCode,
    WelcomeSent,
)
from guidebot.sandbox.relations import Relations
from guidebot.sandbox.transfers import TransferBook
from guidebot.settings import TenantSettings

# [mem] WeCom's UserID rule: 1-64 bytes of letters, digits and "_-@.", starting with a letter
# or digit. Not in FACTS. The sandbox auto-creates any member whose userid matches it.
_USERID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_@.\-]{0,63}$")


def is_userid(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(_USERID.fullmatch(value))


@dataclass
class TenantState:
    settings: TenantSettings
    members: list[str] = field(default_factory=list)
    customers: dict[str, Customer] = field(default_factory=dict)
    follows: Relations = field(default_factory=Relations)
    tag_groups: dict[str, TagGroup] = field(default_factory=dict)
    contact_ways: dict[str, ContactWay] = field(default_factory=dict)
    welcome_codes: dict[str, WelcomeCode] = field(default_factory=dict)
    welcomes_sent: list[WelcomeSent] = field(default_factory=list)
    templates: dict[str, MsgTemplate] = field(default_factory=dict)
    app_messages: list[AppMessage] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    app_msg_window: MinuteWindow = field(default_factory=MinuteWindow)
    # 群发 follow-ups and 朋友圈 tasks (sandbox/api/groupmsg_followup.py, moments.py)
    remind_times: dict[str, list[float]] = field(default_factory=dict)
    cancelled_msgids: set[str] = field(default_factory=set)
    moment_jobs: dict[str, JSON] = field(default_factory=dict)
    moment_job_polls: int = 0  # polls a new moment job answers "not done" (control route)
    jsapi: JsapiState = field(default_factory=JsapiState)  # sidebar tickets, OAuth codes
    directory: Directory = field(default_factory=Directory)  # address book (sandbox/directory.py)
    kf: KfState = field(default_factory=KfState)  # 微信客服 (sandbox/kfstate.py, api/kf.py)
    transfers: TransferBook = field(default_factory=TransferBook)  # 客户继承 (transfers.py)
    groups: GroupBook = field(default_factory=GroupBook)  # 客户群 (groups.py)
    join_ways: JoinWayBook = field(default_factory=JoinWayBook)  # 群活码 (join_ways.py)
    # 入群欢迎语素材 by template_id, in creation order (group_welcome.py)
    group_welcome_templates: dict[str, GroupWelcomeTemplate] = field(default_factory=dict)
    # 获客助手 links by link_id, in creation order (acquisition.py)
    acquisition_links: dict[str, AcquisitionLink] = field(default_factory=dict)
    acquisition_quota: Quota = field(default_factory=Quota)  # the paid link quota
    _member_ids: dict[str, str] = field(default_factory=dict, repr=False)
    # external_userid → send times (Unix s) of the 群发 messages they received (quota checks)
    received: dict[str, list[int]] = field(default_factory=dict, repr=False)
    # chat_id → send times of the 群发 messages the group received this natural month (the
    # monthly quota; massmsg.confirm keeps only the current month's)
    group_received: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.settings.id

    def member(self, userid: object) -> str:
        """Accept any well-formed userid as a member, creating it on first use. Returns the
        one stored string, so a million relations of a thousand members share a thousand."""
        known = self._member_ids.get(userid) if isinstance(userid, str) else None
        if known is not None:
            return known
        if not is_userid(userid):
            raise ApiError(errors.INVALID_USERID, f"invalid userid {userid!r}")
        self._member_ids[userid] = userid
        self.members.append(userid)
        return userid

    def follow(self, userid: str, external_userid: str) -> Follow:
        """The relation between a member and a customer, or 84061."""
        found = self.follows.get((userid, external_userid))
        if found is None:
            raise ApiError(errors.NO_RELATION)
        return found

    def put_follow(self, follow: Follow) -> Follow:
        return self.follows.put(follow)

    def drop_follow(self, userid: str, external_userid: str) -> Follow | None:
        return self.follows.drop(userid, external_userid)

    def follows_of_customer(self, external_userid: str) -> list[Follow]:
        return self.follows.of_customer(external_userid)

    def follows_of_member(self, userid: str) -> list[Follow]:
        return self.follows.of_member(userid)

    def find_tag(self, tag_id: object) -> tuple[TagGroup, Tag] | None:
        """A live (not deleted) tag by id, with its group."""
        for group in self.tag_groups.values():
            for tag in group.tags:
                if tag.id == tag_id and not tag.deleted:
                    return group, tag
        return None

    def tag(self, tag_id: object) -> tuple[TagGroup, Tag]:
        """A live tag by id, or 40068."""
        found = self.find_tag(tag_id)
        if found is None:
            raise ApiError(errors.INVALID_TAG, f"invalid tag id {tag_id!r}")
        return found

    def group_by_name(self, name: str) -> TagGroup | None:
        for group in self.tag_groups.values():
            if group.group_name == name and not group.deleted:
                return group
        return None
