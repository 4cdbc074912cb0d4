"""Request and answer shapes of the monthly targets routes (web/api/targets.py, 业绩目标)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from guidebot.stats.targets import MAX_ADDS, MAX_GMV_FEN
from guidebot.web.api.shapes import Answer, Period, Shape, Store, Userid

MAX_SUBJECTS = 10_000


class PeriodPath(Shape):
    period: Period


class CopyPath(Shape):
    period: Period = Field(description="the month copied into")
    source: Period = Field(description="the month copied from (another month)")


class Goal(Shape):
    adds: int | None = Field(default=None, strict=True, ge=0, le=MAX_ADDS, description=(
        "new customers (adds) in the month; null or left out: no target"))
    gmv_fen: int | None = Field(default=None, strict=True, ge=0, le=MAX_GMV_FEN,
                                description="GMV in integer fen; null or left out: no target")


class TargetsSet(Shape):
    guides: dict[Userid, Goal] = Field(default_factory=dict, max_length=MAX_SUBJECTS,
                                       description="by guide userid")
    stores: dict[Annotated[str, Store], Goal] = Field(
        default_factory=dict, max_length=MAX_SUBJECTS, description="by store id")


class Progress(Answer):
    target: int | None = Field(description="null: no target")
    actual: int = Field(description="the month's figure from the daily statistics")
    completion: float | None = Field(description="actual ÷ target (1.0 = met); null when "
                                     "there is no target or it is 0")


class SubjectTargets(Answer):
    id: str = Field(description="the guide's userid or the store id")
    adds: Progress
    gmv_fen: Progress


class MonthTargets(Answer):
    period: str
    from_: str = Field(alias="from", description="the month's first day")
    to: str = Field(description="the month's last day")
    guides: list[SubjectTargets]
    stores: list[SubjectTargets]


class MonthTargetsCopied(MonthTargets):
    copied: int = Field(description="guides and stores given the source month's targets")
    kept: int = Field(description="guides and stores of the source month whose targets this "
                      "month already had: kept, never overwritten")
