"""Request and answer shapes of the 群活码 routes (web/api/group_codes.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from guidebot.web.api.group_shapes import CHAT_ID
from guidebot.web.api.shapes import PRINTABLE, Answer, Day, Shape

ChatIds = list[Annotated[str, Field(pattern=CHAT_ID)]]
Campaign = Annotated[str, Field(pattern=PRINTABLE, max_length=30,
                                description="campaign, also WeCom's remark (≤ 30)")]
RoomName = Annotated[str, Field(pattern=PRINTABLE, max_length=40)]
StoreId = Annotated[str, Field(pattern=PRINTABLE, max_length=64)]
RoomId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class GroupCodePath(Shape):
    code_id: Annotated[int, Field(ge=1, le=2**31 - 1)]


class GroupCodesQuery(Shape):
    from_: Day = Field(default="", alias="from", description="YYYY-MM-DD (tenant's day)")
    to: Day = Field(default="", description="YYYY-MM-DD (tenant's day)")


class GroupCodeCreate(Shape):
    chat_ids: ChatIds = Field(min_length=1, max_length=5,
                              description="1–5 live customer groups of the tenant")
    campaign: Campaign = ""
    store: StoreId = Field(default="", description="the store the joins are attributed to")
    auto_create_room: bool = Field(default=False, description=(
        "WeCom makes a new group when the listed ones are full (assumed behaviour)"))
    room_base_name: RoomName = Field(default="", description="needed with auto_create_room")
    room_base_id: RoomId = 0


class GroupCodeEdit(Shape):
    chat_ids: ChatIds | None = Field(default=None, min_length=1, max_length=5)
    campaign: Campaign | None = None
    store: StoreId | None = Field(default=None, description='"" clears it')
    auto_create_room: bool | None = None
    room_base_name: RoomName | None = None
    room_base_id: RoomId | None = None


class CodeGroup(Answer):
    chat_id: str
    name: str


class GroupCode(Answer):
    id: int
    state: str = Field(description="the compact state joins through it carry (\"gj…\")")
    config_id: str = Field(description="WeCom's 加入群聊 way id")
    qr_code: str = Field(description="the QR code image's url")
    campaign: str
    store: str | None
    groups: list[CodeGroup]
    auto_create_room: bool
    room_base_name: str
    room_base_id: int
    created_at: str | None
    deleted_at: str | None


class CodeJoin(Answer):
    external_userid: str
    chat_id: str
    group_name: str
    at: str | None


class ListedGroupCode(GroupCode):
    joined: int = Field(description="customers' joins through it on the range's days")
    joins: list[CodeJoin] = Field(description="the latest 50 of those joins")


class GroupCodes(Answer):
    from_: str = Field(alias="from")
    to: str
    codes: list[ListedGroupCode]
