"""Admin API routes for saved customer segments (客户分群): create, list with live counts, get,
change, delete, and page through the customers matching now."""

from __future__ import annotations

from aiohttp import web

from guidebot.segments.service import Segments
from guidebot.stats import customer_list
from guidebot.web.api import parsing
from guidebot.web.api import segment_shapes as shapes
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.keys import SERVICES


def _segments(request: web.Request) -> Segments:
    return request.app[SERVICES].segments


def _answer(view: dict[str, object]) -> dict[str, object]:
    return shapes.Segment.model_validate(view).model_dump(mode="json")


async def create(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.SegmentSet)
    view = await _segments(request).create(
        request.match_info["tenant"], data.name, data.conditions.model_dump(),
        data.operator or "api")
    return reply(_answer(view), status=201)


async def listed(request: web.Request) -> web.Response:
    views = await _segments(request).listed(request.match_info["tenant"])
    return reply({"segments": [_answer(v) for v in views]})


async def get(request: web.Request) -> web.Response:
    segment_id = parsing.path(request, shapes.SegmentPath).segment_id
    return reply(_answer(await _segments(request).get(request.match_info["tenant"],
                                                      segment_id)))


async def update(request: web.Request) -> web.Response:
    segment_id = parsing.path(request, shapes.SegmentPath).segment_id
    data = await parsing.body(request, shapes.SegmentSet)
    view = await _segments(request).update(
        request.match_info["tenant"], segment_id, data.name, data.conditions.model_dump(),
        data.operator or "api")
    return reply(_answer(view))


async def delete(request: web.Request) -> web.Response:
    segment_id = parsing.path(request, shapes.SegmentPath).segment_id
    await _segments(request).delete(request.match_info["tenant"], segment_id)
    return reply({"id": segment_id, "deleted": True})


async def members(request: web.Request) -> web.Response:
    segment_id = parsing.path(request, shapes.SegmentPath).segment_id
    q = parsing.query(request, shapes.MembersQuery)
    found = await _segments(request).members(request.match_info["tenant"], segment_id,
                                             limit=q.limit, after=q.after)
    return reply({"segment": segment_id,
                  "customers": [customer_list.listed(row) for row in found.rows],
                  "next": found.next})


async def tag(request: web.Request) -> web.Response:
    segment_id = parsing.path(request, shapes.SegmentPath).segment_id
    data = await parsing.body(request, shapes.SegmentTag)
    return reply(await request.app[SERVICES].segment_tags.mark(
        request.match_info["tenant"], segment_id, data.tag_id))


API = "/api/v1/{tenant}/segments"
ENDPOINTS = [
    Endpoint("POST", API, create,
             "Save a customer segment (客户分群): a name and conditions (corp tag ids, guides, "
             "stores, status, added days, purchases); a bad condition is refused naming the "
             "field; answers it with how many customers match now",
             shapes.Segment, body=shapes.SegmentSet, status=201),
    Endpoint("GET", API, listed, "The tenant's segments, each with how many customers match now",
             shapes.SegmentList),
    Endpoint("GET", f"{API}/{{segment_id}}", get, "One segment with its count now",
             shapes.Segment, params=shapes.SegmentPath),
    Endpoint("PUT", f"{API}/{{segment_id}}", update,
             "Replace a segment's name and conditions", shapes.Segment,
             body=shapes.SegmentSet, params=shapes.SegmentPath),
    Endpoint("DELETE", f"{API}/{{segment_id}}", delete,
             "Delete a segment (a scheduled 群发 to it then reaches no one)", shapes.Deleted,
             params=shapes.SegmentPath),
    Endpoint("GET", f"{API}/{{segment_id}}/customers", members,
             "The customers matching the segment now, newest first, a page at a time (as the "
             "customers list)", shapes.Members, query=shapes.MembersQuery,
             params=shapes.SegmentPath),
    Endpoint("POST", f"{API}/{{segment_id}}/tags", tag,
             "批量打标签: mark a corp tag on every customer the segment finds now, through the "
             "relation they began last with a guide still followed (mark_tag through the "
             "outbox, one per customer, made now); customers who carry it already are skipped, "
             "and a second request for the same segment and tag marks no one twice",
             shapes.SegmentTagged, body=shapes.SegmentTag, params=shapes.SegmentPath,
             errors={404: "no such segment or tag (`segment_id`, `tag_id`)"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
