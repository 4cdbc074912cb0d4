"""Request and answer shapes of the corp tag library routes (web/api/tags.py, 标签管理)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from guidebot.contacts.tag_library import NAME_MAX, ORDER_MAX
from guidebot.web.api.shapes import PRINTABLE, Answer, Shape

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# the service checks the WeCom limits (not empty once trimmed, ≤ 30 characters, new in its
# group) so the console is refused the same way; 64 is only the request's bound
TagName = Annotated[str, Field(pattern=PRINTABLE, max_length=64, description=(
    f"1 to {NAME_MAX} characters, not already in the group"))]
Order = Annotated[int, Field(ge=0, le=ORDER_MAX, description=(
    "WeCom's order: a larger one is listed first"))]


class TagPath(Shape):
    tag_id: Id


class GroupPath(Shape):
    group_id: Id


class NewTag(Shape):
    name: TagName
    order: Order | None = None


class TagsCreate(Shape):
    """New tags in an existing group (`group_id`) or in a new group (`group_name`)."""

    group_id: Id | None = Field(None, description="add to this existing group")
    group_name: TagName | None = Field(None, description="or make a new group of this name")
    order: Order | None = Field(None, description="the new group's order")
    tags: list[NewTag] = Field(min_length=1, max_length=100)


class LibraryTagEdit(Shape):
    name: TagName | None = None
    order: Order | None = None


class LibraryTag(Answer):
    id: str
    name: str
    order: int
    customers: int = Field(description="customers carrying the tag (the local mirror)")
    declared: bool = Field(description="declared in content_library/tags.toml: not renamed or "
                                       "deleted here (the next sync would create it again)")


class LibraryGroup(Answer):
    group_id: str
    group_name: str
    order: int
    declared: bool = Field(description="a group tags.toml declares")
    tags: list[LibraryTag]


class TagLibrary(Answer):
    groups: list[LibraryGroup]


class EditedTag(LibraryTag):
    group_id: str
    group_name: str


class TagDeleted(Answer):
    id: str
    name: str
    deleted: Literal[True]
