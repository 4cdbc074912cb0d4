"""Customer groups (客户群): each group as WeCom last described it, and its members with when
they joined and left (guidebot/contacts/groups.py)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow

MEMBER = 1  # groupchat/get member type 1: 企业成员 (a guide or other member)
CUSTOMER = 2  # type 2: 外部联系人 (an external_userid)


class GroupChat(SQLModel, table=True):
    __tablename__ = "group_chats"
    __table_args__ = (Index("ix_group_chats_owner", "tenant", "owner"),)
    tenant: str = Field(primary_key=True, max_length=32)
    chat_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=128)
    owner: str = Field(default="", max_length=64)
    status: int = 0  # groupchat/list: 0 正常, 1 跟进人离职, 2 离职继承中, 3 离职继承完成
    created_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))
    dismissed_at: datetime | None = Field(default=None,
                                          sa_column=Column(UTCDateTime(), nullable=True))
    member_version: str = Field(default="", max_length=64)
    customers: int = 0  # members of type 2 now in the group
    staff: int = 0  # members of type 1 now in the group
    synced_at: datetime = Field(default_factory=utcnow,
                                sa_column=Column(UTCDateTime(), nullable=False))


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_member", "tenant", "member_id"),
                      Index("ix_group_members_joined", "tenant", "joined_at"),
                      Index("ix_group_members_left", "tenant", "left_at"))
    tenant: str = Field(primary_key=True, max_length=32)
    chat_id: str = Field(primary_key=True, max_length=64)
    member_id: str = Field(primary_key=True, max_length=128)  # userid or external_userid
    kind: int = CUSTOMER
    joined_at: datetime | None = Field(default=None,
                                       sa_column=Column(UTCDateTime(), nullable=True))
    join_scene: int = 0  # groupchat/get: 1 直接邀请, 2 邀请链接, 3 扫群二维码
    invitor: str = Field(default="", max_length=64)
    # groupchat/get's member `state`: the 加入群聊 way's state they joined through (a 群活码's
    # "gj…", migration 0061); "" for none. That WeCom lists it is assumed, not confirmed.
    join_state: str = Field(default="", max_length=30, sa_column_kwargs={"server_default": ""})
    left_at: datetime | None = Field(default=None,
                                     sa_column=Column(UTCDateTime(), nullable=True))


JOIN, LEAVE = "join", "leave"  # a customer joined or left a group
HANDED_IN, HANDED_OUT = "in", "out"  # the group changed owner: its customers go with it


class GroupCustomerChange(SQLModel, table=True):
    """A customer joining or leaving a group, or a group's customers handed from one owner
    to another (migration 0058), written with the change itself; the daily statistics read
    these past an id watermark (guidebot/stats/daily.py), as they read follow events. The
    客户群 page and the groups API count a range's joins and leaves from them by
    (tenant, change, at) (migration 0060): every join and leave is kept here, where
    group_members keeps only a member's last."""

    __tablename__ = "group_customer_changes"
    __table_args__ = (Index("ix_group_customer_changes_at", "tenant", "change", "at",
                            "chat_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    chat_id: str = Field(max_length=64)
    owner: str = Field(default="", max_length=64)  # the group's owner at the change
    external_userid: str = Field(max_length=128)
    change: str = Field(max_length=8)  # JOIN | LEAVE | HANDED_IN | HANDED_OUT
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # a JOIN through a 加入群聊 way: its state (a 群活码's "gj…", migration 0061), else ""
    state: str = Field(default="", max_length=30, sa_column_kwargs={"server_default": ""})


class GroupJoinCode(SQLModel, table=True):
    """A 群活码 (migration 0061): a 加入群聊 way guidebot made in WeCom for 1–5 of the
    tenant's groups (groupchat/add_join_way, assumed API), with its QR code and the compact
    state ("gj…") its joins carry, so they are counted under the code."""

    __tablename__ = "group_join_codes"
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32, index=True)
    config_id: str = Field(default="", max_length=128)
    qr_code: str = Field(default="", max_length=512)
    state: str = Field(default="", max_length=30)
    campaign: str = Field(default="", max_length=30)  # also WeCom's remark (≤ 30)
    store_id: str | None = Field(default=None, max_length=64)
    chat_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    auto_create_room: bool = False
    room_base_name: str = Field(default="", max_length=40)
    room_base_id: int = 0
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
    deleted_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))

    def chat_list(self) -> list[str]:
        return [str(c) for c in json.loads(self.chat_ids or "[]")]


class GroupWelcomeTemplate(SQLModel, table=True):
    """A group welcome template (入群欢迎语) guidebot created in WeCom from
    content_library/group_welcome.toml: its template_id and the content it was made from."""

    __tablename__ = "group_welcome_templates"
    tenant: str = Field(primary_key=True, max_length=32)
    name: str = Field(primary_key=True, max_length=48)
    template_id: str = Field(max_length=128)
    digest: str = Field(max_length=64)  # of the content sent (file names, not media ids)
    synced_at: datetime = Field(default_factory=utcnow,
                                sa_column=Column(UTCDateTime(), nullable=False))
