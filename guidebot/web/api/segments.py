"""Admin API routes for saved customer segments (客户分群): create, list with stored counts,
get (counted now), change, delete, page through the customers matching now, and start and
watch 批量打标签 runs."""

from __future__ import annotations

from aiohttp import web

from guidebot.errors import NotFound
from guidebot.segments.service import Segments
from guidebot.segments.tagging import RunStaging
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
        request.match_info["tenant"], data.name, data.conditions.model_dump(by_alias=True),
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
        request.match_info["tenant"], segment_id, data.name,
        data.conditions.model_dump(by_alias=True), data.operator or "api")
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


def _run(view: dict[str, object]) -> dict[str, object]:
    return shapes.SegmentTagRun.model_validate(view).model_dump(mode="json")


async def tag(request: web.Request) -> web.Response:
    segment_id = parsing.path(request, shapes.SegmentPath).segment_id
    data = await parsing.body(request, shapes.SegmentTag)
    try:
        run = await request.app[SERVICES].segment_tags.start(
            request.match_info["tenant"], segment_id, data.tag_id, data.operator or "api")
    except RunStaging as exc:
        return parsing.error(409, "tag_id", f"a run for this segment and tag is staging "
                             f"(run {exc.run['id']})", run=_run(exc.run))
    return reply(_run(run), status=202)


async def runs(request: web.Request) -> web.Response:
    segment_id = parsing.path(request, shapes.SegmentPath).segment_id
    tenant = request.match_info["tenant"]
    await _segments(request).search(tenant, segment_id)  # 404 for another brand's
    found = await request.app[SERVICES].segment_tags.of_segment(tenant, segment_id)
    return reply({"runs": [_run(r) for r in found]})


async def run(request: web.Request) -> web.Response:
    where = parsing.path(request, shapes.RunPath)
    view = await request.app[SERVICES].segment_tags.get(request.match_info["tenant"],
                                                        where.run_id)
    if view["segment"] != where.segment_id:
        raise NotFound(f"run_id: no tagging run {where.run_id} of segment "
                       f"{where.segment_id}", code="seg.run_unknown", run_id=where.run_id)
    return reply(_run(view))


API = "/api/v1/{tenant}/segments"
ENDPOINTS = [
    Endpoint("POST", API, create,
             "Save a customer segment (客户分群): a name and conditions (corp tag ids, guides, "
             "stores, status, added days, purchases); a bad condition is refused naming the "
             "field; answers it with how many customers match now",
             shapes.Segment, body=shapes.SegmentSet, status=201),
    Endpoint("GET", API, listed, "The tenant's segments, each with how many customers it "
             "matched when last counted (`count`, `counted_at`: counted on save and on "
             "opening a segment; the list counts again those older than 10 minutes, 20 at "
             "most per request)",
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
             "批量打标签: start a run marking a corp tag on every customer the segment finds, "
             "through the relation they began last with a guide still followed; answers at "
             "once (202, the run, state staging) while the run queues one mark_tag per "
             "customer through the outbox in the background, a page at a time (watch it with "
             "GET …/tag-runs/{run_id}); customers who carry the tag are skipped. Each run "
             "marks anew (a customer whose tag was removed since an earlier run is marked "
             "again); while a run for the same segment and tag is staging, another start is "
             "409 with that run (`run`)",
             shapes.SegmentTagRun, body=shapes.SegmentTag, params=shapes.SegmentPath,
             status=202,
             errors={404: "no such segment or tag (`segment_id`, `tag_id`)",
                     409: "a run for this segment and tag is staging (`run`)"}),
    Endpoint("GET", f"{API}/{{segment_id}}/tag-runs", runs,
             "The segment's 批量打标签 runs, newest first, with their counts and marks",
             shapes.SegmentTagRuns, params=shapes.SegmentPath),
    Endpoint("GET", f"{API}/{{segment_id}}/tag-runs/{{run_id}}", run,
             "One 批量打标签 run: its counts so far and its marks in the outbox (sent, "
             "pending, failed, dead)", shapes.SegmentTagRun, params=shapes.RunPath,
             errors={404: "no such run of this segment (`run_id`)"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
