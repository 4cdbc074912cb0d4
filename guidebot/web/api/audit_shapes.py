"""Request and answer shapes of 操作日志 (web/api/audit.py; audit/log.py)."""

from __future__ import annotations

from pydantic import Field

from guidebot.web.api.handoff_shapes import HandoffRange
from guidebot.web.api.shapes import Answer, Text128


class AuditQuery(HandoffRange):
    """A range of the tenant's days, who, and where the page starts."""

    actor: Text128 = Field(default="", description="only this actor's entries: a member's "
                           "userid, or \"admin token\"")
    cursor: Text128 = Field(default="", description="`next_cursor` of the page before")


class AuditItem(Answer):
    at: str = Field(description="UTC, ISO 8601")
    actor: str = Field(description="a member's userid (企业微信登录), \"admin token\" (the "
                       "bearer token, or the console's token sign-in); \"\": an unknown "
                       "visitor's refused or throttled sign-in")
    action: str = Field(description="the route as METHOD and path template "
                        "(\"POST /api/v1/{tenant}/sops/{id}/enroll\"), or sign_in | "
                        "sign_in_refused | sign_in_throttled | sign_out")
    params: dict[str, str] = Field(description="the path's ids (never the body); for a "
                                   "sign-in: its method (token | wecom) and outcome")
    status: int = Field(description="the answer's HTTP status (only successes are recorded; "
                        "refused sign-ins too)")


class AuditPage(Answer):
    from_: str = Field(alias="from")
    to: str
    actor: str | None
    items: list[AuditItem] = Field(description="newest first, at most 100")
    next_cursor: str | None = Field(description="the next page's cursor; null on the last")
