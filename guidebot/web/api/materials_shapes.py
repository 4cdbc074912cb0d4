"""Request and answer shapes of the material centre's admin API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from guidebot.web.api.shapes import (
    PRINTABLE,
    Answer,
    ExternalUserid,
    Key,
    Name,
    Period,
    Reason,
    Shape,
    Userid,
)

MATERIAL_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MaterialId = Annotated[str, Field(pattern=MATERIAL_ID, description="a material id")]
Grade = Literal["S", "A", "B", "C"]
Word = Annotated[str, Field(pattern=PRINTABLE, min_length=1, max_length=64)]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]{1,500}$", max_length=512)]


class LinkShape(Shape):
    title: Annotated[str, Field(pattern=PRINTABLE, min_length=1, max_length=64)]
    url: Url
    desc: Annotated[str, Field(pattern=PRINTABLE, max_length=128)] = ""
    picurl: Url | None = None


class MaterialBody(Shape):
    """A material's content: text (≤ 2,000 characters) with a video or a link card, product
    skus, categories and occasion tags. Pictures come from content_library files or from
    guides' chat contributions."""

    title: Annotated[str, Field(pattern=PRINTABLE, max_length=64)] = ""
    text: Annotated[str, Field(max_length=2000)] = ""
    video: Annotated[str, Field(pattern=PRINTABLE, max_length=256)] = ""
    link: LinkShape | None = None
    skus: list[Word] = Field(default_factory=list, max_length=20)
    categories: list[Word] = Field(default_factory=list, max_length=20)
    occasions: list[Word] = Field(default_factory=list, max_length=20)


class MaterialCreate(MaterialBody):
    id: MaterialId | None = Field(None, description="the id to give it (default: generated); "
                                  "the same id and content again answers the stored one")
    grade: Grade | None = Field(None, description="an HQ material given a grade is approved "
                                "at once; without one it waits for review")
    editor: Name = "hq"


class MaterialEdit(MaterialBody):
    editor: Name = "hq"


class Approve(Shape):
    grade: Grade
    reviewer: Name = "hq"


class Reject(Shape):
    reason: Reason
    reviewer: Name = "hq"


class Withdraw(Shape):
    by: Name = "hq"


class BatchReview(Shape):
    ids: list[MaterialId] = Field(min_length=1, max_length=200)
    action: Literal["approve", "reject", "withdraw"]
    grade: Grade | None = None
    reason: Reason | None = None
    reviewer: Name = "hq"


class UseCreate(Shape):
    guide: Userid = Field(description="the guide who sends, posts or shares it")
    channel: Literal["send", "moment", "card"] = "send"
    external_userid: ExternalUserid | None = Field(None, description="the customer it goes "
                                                   "to, when sent to one")
    key: Key | None = None


class PointsAdjustment(Shape):
    guide: Userid
    points: int = Field(strict=True, ge=-1_000_000, le=1_000_000)
    reason: Reason
    operator: Name
    key: Key


class MaterialPath(Shape):
    model_config = ConfigDict(extra="ignore")
    material_id: MaterialId


class MaterialsQuery(Shape):
    model_config = ConfigDict(extra="ignore")
    status: Literal["pending", "approved", "rejected", "withdrawn", ""] = "pending"
    contributor: Userid | None = None


class SearchQuery(Shape):
    model_config = ConfigDict(extra="ignore")
    keyword: Annotated[str, Field(pattern=PRINTABLE, min_length=1, max_length=64)]


class LeaderboardQuery(Shape):
    model_config = ConfigDict(extra="ignore")
    period: Period


# --- answers ----------------------------------------------------------------------------------

class Material(Answer):
    id: str
    source: Literal["hq", "guide"]
    contributor: str
    title: str
    text: str
    pictures: list[str]
    video: str
    link: dict[str, str]
    skus: list[str]
    categories: list[str]
    occasions: list[str]
    flags: list[str] = Field(description="sensitive words found in the text")
    status: Literal["pending", "approved", "rejected", "withdrawn"]
    reason: str
    grade: str
    version: int
    reviewed_by: str
    reviewed_at: str | None
    created_at: str
    updated_at: str


class QueuedMaterial(Material):
    history: dict[str, int] = Field(description="the contributor's materials per status "
                                    "(and approved ones per grade_S … grade_C)")


class MaterialList(Answer):
    materials: list[QueuedMaterial]


class MaterialVersions(Answer):
    material: Material
    versions: list[dict[str, Any]]


class BatchResult(Answer):
    results: list[dict[str, Any]]


class Use(Answer):
    recorded: bool = Field(description="false when this key was used before")
    points: int = Field(description="points the contributor earned by this use")
    text: str
    video: str
    token: str = Field(description="the sender's card tracking token")
    attachments: list[dict[str, Any]]
    material: Material


class Stats(Answer):
    id: str
    contributor: str
    grade: str
    uses: int
    customers_reached: int
    card_opens: int
    orders: int
    gmv_fen: int


class Contributor(Answer):
    guide: str
    materials: dict[str, int] = Field(description="the guide's materials per status")
    uses: int
    customers_reached: int
    card_opens: int
    orders: int
    gmv_fen: int
    points: int = Field(description="points earned in the period")


class Contributors(Answer):
    period: str
    contributors: list[Contributor]


class Leaderboard(Answer):
    period: str
    guides: list[dict[str, Any]]


class Adjusted(Answer):
    created: bool
    entry: dict[str, Any]


class Found(Answer):
    materials: list[Material]

