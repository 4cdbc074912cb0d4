"""Request and answer shapes of the customer transfer routes (web/api/transfers.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from guidebot.web.api.shapes import PRINTABLE, Answer, ExternalUserid, Key, Shape, Userid

State = Literal["queued", "waiting", "done", "refused", "limit", "failed", "none"]


class TransferCreate(Shape):
    kind: Literal["on_job", "resigned"] = Field(description=(
        "on_job: 在职继承 (the customer is told and may refuse); resigned: 离职继承, for a "
        "guide who left the company"))
    handover: Userid = Field(description="the guide whose customers move")
    takeover: Userid = Field(description="the guide who takes them over (active)")
    external_userids: list[ExternalUserid] | None = Field(
        default=None, min_length=1, max_length=10_000,
        description="these customers only (default: all the handover guide's)")
    message: str = Field(default="", max_length=200, pattern=PRINTABLE, description=(
        "on_job only: what WeCom tells the customer (transfer_success_msg; WeCom's own "
        "text when empty)"))
    key: Key | None = None


class TransferPath(Shape):
    batch_id: int = Field(ge=1, le=2**53)


class TransfersQuery(Shape):
    limit: int = Field(default=50, ge=1, le=200)
    before: int | None = Field(default=None, ge=1, le=2**53)


class TransferCustomer(Answer):
    external_userid: str
    state: State
    errcode: int | None = Field(description="WeCom's code when it did not start the transfer")
    takeover_at: str | None = Field(description=(
        "waiting: when WeCom completes it; done: when it was completed"))
    checked_at: str | None


class Transfer(Answer):
    id: int
    kind: Literal["on_job", "resigned"]
    handover: str
    takeover: str
    message: str
    created_at: str | None
    customers: int
    states: dict[str, int]
    customer_list: list[TransferCustomer] | None = None


class Transfers(Answer):
    transfers: list[Transfer]
    next: int | None


class UnassignedGuide(Answer):
    handover: str
    customers: int
    external_userids: list[str]
    dimission_at: str | None


class UnassignedList(Answer):
    guides: list[UnassignedGuide]
