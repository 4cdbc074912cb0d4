"""Request and answer shapes of the customer group routes (web/api/groups.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from guidebot.web.api.shapes import Answer, Day, Shape

# chat ids look like "wr" + 30 characters (FACTS-next §C.1 sample); the bound is ours
CHAT_ID = r"^[A-Za-z0-9_-]{1,64}$"
OWNER = r"^([A-Za-z0-9_.@-]{1,64})?$"


class GroupsQuery(Shape):
    from_: Day = Field(default="", alias="from", description="YYYY-MM-DD (tenant's day)")
    to: Day = Field(default="", description="YYYY-MM-DD (tenant's day)")
    owner: str = Field(default="", pattern=OWNER, description="only this guide's groups")
    dismissed: bool = Field(default=False, description="dismissed groups too")


class GroupPath(Shape):
    chat_id: str = Field(pattern=CHAT_ID)


class Group(Answer):
    chat_id: str
    name: str
    owner: str
    status: int = Field(description="0 正常, 1 群主离职, 2 离职继承中, 3 离职继承完成")
    created_at: str | None
    dismissed_at: str | None
    customers: int = Field(description="customers in the group now")
    staff: int = Field(description="members of the corp in the group now")
    synced_at: str | None


class ListedGroup(Group):
    joined: int = Field(description="customers who joined on the range's days")
    left: int = Field(description="customers who left on the range's days")


class GroupTotals(Answer):
    groups: int
    customers: int = Field(description="distinct customers in live groups")
    joined: int
    left: int


class Groups(Answer):
    totals: GroupTotals
    groups: list[ListedGroup]


class GroupMember(Answer):
    member_id: str
    kind: Literal["customer", "member"]
    joined_at: str | None
    join_scene: int = Field(description="1 直接邀请, 2 邀请链接, 3 扫群二维码, 0 unknown")
    join_state: str | None = Field(description="the 加入群聊 way's state they joined "
                                   "through (a 群活码's), null for none")
    invitor: str | None
    left_at: str | None


class GroupDetail(Group):
    members: list[GroupMember]


class GroupTransfer(Shape):
    chat_ids: list[Annotated[str, Field(pattern=CHAT_ID)]] = Field(min_length=1,
                                                                   max_length=1000)
    new_owner: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$", description="an active guide")
    kind: Literal["resigned", "on_job"] = Field(description=(
        "resigned: the groups' owner left the company; on_job: the owner is still employed"))


class RefusedGroup(Answer):
    chat_id: str
    errcode: int | None = Field(description="WeCom's code; null when the call failed (it is "
                                "retried)")


class GroupTransferResult(Answer):
    transferred: list[str]
    failed: list[RefusedGroup]


class GroupSync(Answer):
    groups: int
    dismissed: int
