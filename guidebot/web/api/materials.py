"""Admin JSON API of the material centre: materials, review, uses, stats and points."""

from __future__ import annotations

from aiohttp import web

from guidebot.content.materials import Content
from guidebot.errors import Conflict, WeComError
from guidebot.materials.service import content_of, view, with_pictures
from guidebot.services import Services
from guidebot.web.api import materials_shapes as shapes
from guidebot.web.api import parsing
from guidebot.web.api.parsing import Endpoint, Handler, reply
from guidebot.web.audit_trail import nothing_done
from guidebot.web.keys import SERVICES

API = "/api/v1/{tenant}"
ONE = f"{API}/materials/{{material_id}}"
CONFLICT = {409: "the material's status does not allow this step"}


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _tenant(request: web.Request) -> str:
    return request.match_info["tenant"]


def _id(request: web.Request) -> str:
    return parsing.path(request, shapes.MaterialPath).material_id


def _content(body: shapes.MaterialBody) -> Content:
    link = body.link.model_dump(exclude_none=True) if body.link else {}
    return Content(title=body.title, text=body.text, video=body.video,
                   link=tuple(sorted(link.items())), skus=tuple(body.skus),
                   categories=tuple(body.categories), occasions=tuple(body.occasions))


async def list_materials(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.MaterialsQuery)
    found = await _services(request).materials.queue(_tenant(request), q.status, q.contributor)
    return reply({"materials": found})


async def search_materials(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.SearchQuery)
    return reply({"materials": await _services(request).materials.search(_tenant(request),
                                                                        q.keyword)})


async def create_material(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.MaterialCreate)
    service, tenant, content = _services(request).materials, _tenant(request), _content(data)
    if data.id:
        existing = await service.find(tenant, data.id)
        if existing is not None:
            if content_of(existing) != content or existing.source != "hq":
                raise Conflict(data.id, view(existing))
            nothing_done(request)  # the same material again: nothing done now
            return reply(view(existing))
    made = await service.create(tenant, content, source="hq", material_id=data.id or "",
                                grade=data.grade or "", editor=data.editor)
    return reply(view(made), status=201)


async def get_material(request: web.Request) -> web.Response:
    service, tenant, material_id = _services(request).materials, _tenant(request), _id(request)
    material = await service.get(tenant, material_id)
    return reply({"material": view(material),
                  "versions": await service.versions(tenant, material_id)})


async def edit_material(request: web.Request) -> web.Response:
    material_id = _id(request)
    data = await parsing.body(request, shapes.MaterialEdit)
    service = _services(request).materials
    current = await service.get(_tenant(request), material_id)
    content = with_pictures(_content(data), content_of(current).pictures)  # pictures stay
    edited = await service.edit(_tenant(request), material_id, content, data.editor)
    return reply(view(edited))


REVIEWS: dict[str, tuple[type[shapes.Approve] | type[shapes.Reject], str]] = {
    "approve": (shapes.Approve, "grade"), "reject": (shapes.Reject, "reason")}


def review(action: str) -> Handler:
    """Approve (with a grade) or reject (with a reason) one pending material."""
    shape, field = REVIEWS[action]

    async def handler(request: web.Request) -> web.Response:
        material_id = _id(request)
        data: shapes.Approve | shapes.Reject = await parsing.body(request, shape)
        step = getattr(_services(request).materials, action)
        done = await step(_tenant(request), material_id, getattr(data, field), data.reviewer)
        return reply(view(done))
    handler.__name__ = action
    return handler


async def withdraw(request: web.Request) -> web.Response:
    material_id = _id(request)
    data = await parsing.body(request, shapes.Withdraw)
    done = await _services(request).materials.withdraw(_tenant(request), material_id, data.by)
    return reply(view(done))


async def review_batch(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.BatchReview)
    if data.action == "approve" and data.grade is None:
        raise parsing.FieldError("grade", "required to approve")
    if data.action == "reject" and data.reason is None:
        raise parsing.FieldError("reason", "required to reject (the guide is told)")
    results = await _services(request).materials.batch(
        _tenant(request), data.ids, data.action, grade=data.grade or "",
        reason=data.reason or "", reviewer=data.reviewer)
    if not any(r["ok"] for r in results):  # answered as ever (200, each why), not recorded
        nothing_done(request)
    return reply({"results": results})


async def use_material(request: web.Request) -> web.Response:
    material_id = _id(request)
    data = await parsing.body(request, shapes.UseCreate)
    try:
        used = await _services(request).materials.use(
            _tenant(request), material_id, guide=data.guide, channel=data.channel,
            customer=data.external_userid or "", key=data.key or "")
    except WeComError as exc:
        return parsing.error(502, None, "WeCom refused media/upload", errcode=exc.errcode)
    return reply(used, status=201 if used["recorded"] else 200)


async def material_stats(request: web.Request) -> web.Response:
    return reply(await _services(request).materials.stats(_tenant(request), _id(request)))


async def contributors(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.LeaderboardQuery)
    rows = await _services(request).materials.contributors(_tenant(request), q.period)
    return reply({"period": q.period, "contributors": rows})


async def leaderboard(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.LeaderboardQuery)
    return reply(await _services(request).points.leaderboard(_tenant(request), q.period))


async def adjust_points(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.PointsAdjustment)
    done = await _services(request).points.adjust(
        _tenant(request), guide=data.guide, points=data.points, reason=data.reason,
        operator=data.operator, key=data.key)
    return reply(done, status=201 if done["created"] else 200)


ENDPOINTS = [
    Endpoint("GET", f"{API}/materials", list_materials,
             "Materials in a status (default pending: the review queue), oldest first, each "
             "with its contributor's history", shapes.MaterialList,
             query=shapes.MaterialsQuery),
    Endpoint("GET", f"{API}/materials/search", search_materials,
             "Approved materials matching a keyword (title, text, skus, categories, "
             "occasions), best grade first", shapes.Found, query=shapes.SearchQuery),
    Endpoint("GET", f"{API}/materials/contributors", contributors,
             "Per contributor: materials per status, what their approved materials did "
             "(uses, customers, card opens, orders, GMV) and their points in the month",
             shapes.Contributors, query=shapes.LeaderboardQuery),
    Endpoint("POST", f"{API}/materials", create_material,
             "An HQ material (approved at once when given a grade)", shapes.Material,
             body=shapes.MaterialCreate, status=201,
             errors={409: "the id exists with other content"}),
    Endpoint("GET", ONE, get_material, "A material and all its versions",
             shapes.MaterialVersions, params=shapes.MaterialPath),
    Endpoint("PUT", ONE, edit_material, "A new version of a material's content",
             shapes.Material, body=shapes.MaterialEdit, params=shapes.MaterialPath,
             errors=CONFLICT),
    Endpoint("POST", f"{ONE}/approve", review("approve"),
             "Approve a pending material with a grade (its contributor is told)",
             shapes.Material, body=shapes.Approve, params=shapes.MaterialPath,
             errors=CONFLICT),
    Endpoint("POST", f"{ONE}/reject", review("reject"),
             "Reject a pending material with a reason (its contributor is told)",
             shapes.Material, body=shapes.Reject, params=shapes.MaterialPath,
             errors=CONFLICT),
    Endpoint("POST", f"{ONE}/withdraw", withdraw,
             "Withdraw a material: no longer found or usable", shapes.Material,
             body=shapes.Withdraw, params=shapes.MaterialPath, errors=CONFLICT),
    Endpoint("POST", f"{API}/materials/review", review_batch,
             "One review step for several materials, each answered on its own",
             shapes.BatchResult, body=shapes.BatchReview),
    Endpoint("POST", f"{ONE}/uses", use_material,
             "A guide uses an approved material: what to send (cards carry the guide's "
             "tracking token); the contributor earns the grade's points", shapes.Use,
             body=shapes.UseCreate, params=shapes.MaterialPath, status=201,
             errors={**CONFLICT, 502: "WeCom refused media/upload"}),
    Endpoint("GET", f"{ONE}/stats", material_stats,
             "What a material did: uses, customers reached, card opens, attributed orders "
             "and GMV", shapes.Stats, params=shapes.MaterialPath),
    Endpoint("GET", f"{API}/points/leaderboard", leaderboard,
             "Contributors' points in a month, most first", shapes.Leaderboard,
             query=shapes.LeaderboardQuery),
    Endpoint("POST", f"{API}/points/adjustments", adjust_points,
             "HQ adds or takes points (an append-only ledger entry)", shapes.Adjusted,
             body=shapes.PointsAdjustment, status=201,
             errors={409: "the key was used for another adjustment"}),
]


def install(app: web.Application) -> None:
    """The admin and sidebar routes, and HQ's library materials brought into every tenant at
    start."""
    from guidebot.web.pages import sidebar_materials

    app.add_routes([e.route() for e in ENDPOINTS])
    app.add_routes(sidebar_materials.routes())

    async def sync_library(app: web.Application) -> None:
        services = app[SERVICES]
        for tenant in services.settings.tenants:
            await services.materials.sync_library(tenant)

    app.on_startup.append(sync_library)
