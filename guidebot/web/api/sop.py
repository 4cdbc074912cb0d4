"""Admin JSON API for SOPs: list, preview, enroll; and the guide tasks they created."""

from __future__ import annotations

from aiohttp import web

from guidebot.content.reload import problems_json
from guidebot.content.sop_spec import Audience
from guidebot.services import Services
from guidebot.sop import views
from guidebot.web.api import parsing, shapes
from guidebot.web.api.parsing import Endpoint, FieldError, reply
from guidebot.web.audit_trail import nothing_done
from guidebot.web.keys import SERVICES


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


async def list_sops(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    currents = await services.sop.ready(tenant)
    body = await views.sops_view(services.db, services.settings.tenant(tenant), currents)
    # An edit of content_library that failed validation (the library in force stays).
    body["library_errors"] = problems_json(services.library)
    return reply(body)


async def preview(request: web.Request) -> web.Response:
    services, tenant_id = _services(request), request.match_info["tenant"]
    sop_id = parsing.path(request, shapes.SopPath).sop_id
    added_at = parsing.query(request, shapes.PreviewQuery).added_at
    tenant = services.settings.tenant(tenant_id)
    added_at = added_at.replace(tzinfo=tenant.tz) if added_at.tzinfo is None else added_at
    currents = await services.sop.ready(tenant_id)
    return reply(views.preview_view(currents.get(sop_id), sop_id, tenant, added_at))


async def tasks(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    q = parsing.query(request, shapes.TasksQuery)
    return reply(await views.tasks_view(services.db, services.settings.tenant(tenant),
                                        q.guide, q.status, limit=q.limit, after=q.after))


async def enroll(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    sop_id = parsing.path(request, shapes.SopPath).sop_id
    data = await parsing.body(request, shapes.Enroll)
    if data.audience is not None:
        if data.external_userid is not None or data.guide is not None:
            raise FieldError("audience", "give it alone, not with external_userid or guide")
        lists = data.audience.model_dump(exclude={"segment"})
        audience = Audience(**{k: tuple(v) for k, v in lists.items()},
                            segment=data.audience.segment)
        enrolled = await services.sop.enroll_audience(tenant, sop_id, audience)
        return reply({"sop": sop_id, "enrolled": enrolled,
                      "audience": {**lists, "segment": audience.segment}})
    for name in ("external_userid", "guide"):
        if getattr(data, name) is None:
            raise FieldError(name, "required (or give an audience)")
    assert data.external_userid is not None and data.guide is not None
    enrollment_id, created = await services.sop.enroll_one(
        tenant, sop_id, external_userid=data.external_userid, guide=data.guide)
    return reply({"enrollment_id": enrollment_id, "sop": sop_id, "created": created},
                 status=201 if created else 200)


async def fire_drop(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    drop_id = parsing.path(request, shapes.DropPath).drop_id
    data = await parsing.body(request, shapes.DropFire)
    fired, replayed = await services.sop.fire_drop(tenant, drop_id, key=data.key or "")
    if replayed:  # the key fired this drop before: nothing made now
        nothing_done(request)
    return reply(fired)


async def drop_sends(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    drop_id = parsing.path(request, shapes.DropPath).drop_id
    firings = await services.sop.drop_sends(tenant, drop_id)
    return reply({"drop": drop_id, "firings": [f.answer() for f in firings]})


async def stop_drop(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    drop_id = parsing.path(request, shapes.DropPath).drop_id
    data = await parsing.body(request, shapes.DropStop)
    stopped, changed = await services.sop.stop_drop(tenant, drop_id, data.firing)
    if not changed:  # nothing left to stop: answered as ever, with its counts
        nothing_done(request)
    return reply(stopped)


async def stop_step(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    sop_id = parsing.path(request, shapes.SopPath).sop_id
    data = await parsing.body(request, shapes.SopStop)
    stopped, changed = await services.sop.stop_step(tenant, sop_id, data.step)
    if not changed:  # nothing left to stop: answered as ever, with its counts
        nothing_done(request)
    return reply(stopped)


async def switch(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    sop_id = parsing.path(request, shapes.SopPath).sop_id
    data = await parsing.body(request, shapes.SopSwitchSet)
    enabled = await services.sop.switch(tenant, sop_id, on=data.enabled,
                                        operator=data.operator or "api")
    return reply({"sop": sop_id, "enabled": enabled, "switched_off": not data.enabled})


ENDPOINTS = [
    Endpoint("GET", "/api/v1/{tenant}/sops", list_sops,
             "SOPs: newest version, steps, enrollment counts", shapes.Sops),
    Endpoint("GET", "/api/v1/{tenant}/sops/{sop_id}/preview", preview,
             "When each step would fire for a customer added at added_at (quiet hours, quota)",
             shapes.Preview, query=shapes.PreviewQuery, params=shapes.SopPath),
    Endpoint("POST", "/api/v1/{tenant}/sops/{sop_id}/enroll", enroll,
             "Enroll one customer of a guide (201; 200 with created false when enrolled), or "
             "an audience (200)", shapes.Enrolled, body=shapes.Enroll, params=shapes.SopPath,
             status=201),
    Endpoint("POST", "/api/v1/{tenant}/sops/{sop_id}/switch", switch,
             "Switch an SOP off (as a file's enabled = false: enrollments stop at their next "
             "step, no one new joins) or on again",
             shapes.SopSwitched, body=shapes.SopSwitchSet, params=shapes.SopPath),
    Endpoint("POST", "/api/v1/{tenant}/sops/{sop_id}/stop", stop_step,
             "Stop a step's tasks (停止群发): not sent yet → cancelled with their steps; 群发 "
             "tasks WeCom holds → cancelled there unless their guide sent them already",
             shapes.SopStepStopped, body=shapes.SopStop, params=shapes.SopPath),
    Endpoint("POST", "/api/v1/{tenant}/drops/{drop_id}/fire", fire_drop,
             "Send a content drop now, whatever its schedule (立即发送): its tasks as a "
             "scheduled firing makes them; a key makes it once",
             shapes.DropFired, body=shapes.DropFire, params=shapes.DropPath),
    Endpoint("GET", "/api/v1/{tenant}/drops/{drop_id}/sends", drop_sends,
             "A drop's latest firings (群发记录), newest first, their tasks counted by state",
             shapes.DropSends, params=shapes.DropPath),
    Endpoint("POST", "/api/v1/{tenant}/drops/{drop_id}/stop", stop_drop,
             "Stop a firing (停止群发): tasks not sent yet are cancelled, 群发 tasks WeCom "
             "holds are cancelled there unless their guide sent them already",
             shapes.DropStopped, body=shapes.DropStop, params=shapes.DropPath),
    Endpoint("GET", "/api/v1/{tenant}/tasks", tasks,
             "Guide tasks, reminders and moments from SOPs and drops, with delivery state, "
             "newest first, a page at a time (follow `next` as `after` until it is null)",
             shapes.Tasks, query=shapes.TasksQuery),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
