"""Admin API routes for 预打标签: corp tags for customers known by unionid before they add a
guide (contacts/pretags.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import ConfigDict, Field

from guidebot import idempotency
from guidebot.contacts.pretags import MAX_LINES, MAX_TAGS, Line, PreTags, nothing_new
from guidebot.web.api import parsing
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.api.shapes import IDEMPOTENCY_KEY, PRINTABLE, Answer, Shape
from guidebot.web.audit_trail import nothing_done
from guidebot.web.keys import SERVICES

Unionid = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
                               description="the customer's WeChat unionid")]
State = Literal["pending", "marking", "failed", "applied", "tag_deleted"]  # repo's STATES
TagRef = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE,
                              description="a corp tag's name or id in the tenant's library")]


class PreTagLine(Shape):
    unionid: Unionid
    tags: list[TagRef] = Field(min_length=1, max_length=MAX_TAGS)


class PreTagsImport(Shape):
    lines: list[PreTagLine] = Field(min_length=1, max_length=MAX_LINES, description=(
        "a line that cannot be read, or names a tag the library does not have, refuses the "
        "request naming it (`lines.<n>`, from 0) and nothing is stored"))
    key: Annotated[str, Field(pattern=IDEMPOTENCY_KEY, description=(
        "idempotency key: the same key and body answer the stored result and store nothing "
        "more; the same key with another body answers 409"))] | None = None


class PreTagsImported(Answer):
    import_id: str
    lines: int
    stored: int = Field(description="pre-tags new to the tenant (ones already there are kept)")
    applied: int = Field(description=(
        "marked at once on customers already following a guide, WeCom accepting the mark"))
    marking: int = Field(description=(
        "handed to the outbox for such customers but not accepted yet (retried)"))
    failed: int = Field(description="such marks WeCom refused for good (dead-lettered)")


class PreTagsQuery(Shape):
    model_config = ConfigDict(extra="ignore")
    status: State | None = None
    after: Annotated[str, Field(max_length=200, description="the previous page's `next`")] = ""
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    import_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description=(
        "only this import's pre-tags, and its counts"))] | None = None


class PreTagItem(Answer):
    unionid: str
    tag_id: str
    tag: str | None = Field(description="its name; null when no longer in the library")
    status: State = Field(
        description=(
            "pending: waiting for the customer to add a guide; marking: its mark_tag is in the "
            "outbox, not accepted yet; failed: that outbox row is dead-lettered (`error`), "
            "applied once HQ retries it and WeCom accepts; applied: WeCom accepted the mark "
            "(mirrored); tag_deleted: pending, but its tag left the library (never marked)"))
    error: str | None = Field(description=(
        "the outbox's last error of a mark failed or being retried; else null"))
    import_id: str
    created_at: str
    applied_at: str | None
    guide: str | None
    external_userid: str | None


class PreTagsPage(Answer):
    items: list[PreTagItem]
    next: str | None = Field(description="`after` for the next page; null on the last")
    pending: int
    marking: int
    failed: int
    applied: int
    tag_deleted: int = Field(description="not marked yet, and their tag left the library")
    tags_unknown: int = Field(description="the same as `tag_deleted` (its earlier name, kept)")


class UnionidPath(Shape):
    unionid: Unionid


class PreTagsDeleted(Answer):
    deleted: int


def _pretags(request: web.Request) -> PreTags:
    return request.app[SERVICES].pretags


async def submit(request: web.Request) -> web.Response:
    services, tenant = request.app[SERVICES], request.match_info["tenant"]
    data = await parsing.body(request, PreTagsImport)
    replayed = await idempotency.stored(services.db, tenant, "pretags", data.key, data)
    if replayed is not None:  # the stored answer: nothing done now
        nothing_done(request)
        return reply(replayed)
    result = await _pretags(request).submit(
        tenant, [Line(line.unionid, tuple(line.tags)) for line in data.lines])
    if nothing_new(result):  # every line imported before, none left to mark
        nothing_done(request)
    await idempotency.remember(services.db, tenant, "pretags", data.key, data, result)
    return reply(result, status=201)


async def listed(request: web.Request) -> web.Response:
    query = parsing.query(request, PreTagsQuery)
    page = await _pretags(request).listed(request.match_info["tenant"], status=query.status,
                                          after=query.after, limit=query.limit,
                                          import_id=query.import_id)
    return reply({**page, "tags_unknown": page["tag_deleted"]})


async def delete(request: web.Request) -> web.Response:
    unionid = parsing.path(request, UnionidPath).unionid
    return reply({"deleted": await _pretags(request).delete(request.match_info["tenant"],
                                                            unionid)})


API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("POST", f"{API}/pretags", submit,
             "预打标签: give up to 10,000 customers known by unionid corp tags ahead; marked "
             "through the guide they add (at once through their guide when already following)",
             PreTagsImported, body=PreTagsImport, status=201),
    Endpoint("GET", f"{API}/pretags", listed,
             "Pre-tags by unionid, paged (`after`), with the tenant's (or one import's) "
             "pending, marking, failed, applied and tag-deleted counts", PreTagsPage,
             query=PreTagsQuery),
    Endpoint("DELETE", f"{API}/pretags/{{unionid}}", delete,
             "Forget a unionid's pre-tags not marked yet (pending or tag deleted; ones being "
             "marked, failed or applied are kept)", PreTagsDeleted,
             params=UnionidPath),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
