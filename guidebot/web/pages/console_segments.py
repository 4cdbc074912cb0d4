"""The console's customer segments (客户分群): the tenant's segments with their stored counts
(约 N 人 · 计于 HH:MM), a form to create or change one (with a preview count), its members
(each linking to the customer's page, paged, exported as the customers CSV), its
批量打标签 runs with their progress, and deleting it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from guidebot.content.profile_fields import ProfileField
from guidebot.errors import ValidationFailed
from guidebot.segments.service import LAYERS, LISTS, OPS, Segments
from guidebot.stats import customer_list
from guidebot.stats.records import PAGE
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import (
    catalog,
    csv_export,
    language,
    notice,
    page,
    render,
    services_of,
)

SINGLE = ("status", "added_from", "added_to", "added_days", "purchased", "quiet_days",
          "layer")


def _segments(request: web.Request) -> Segments:
    return services_of(request).segments


def _conditions(values: MultiMapping[Any],
                fields: tuple[ProfileField, ...] = ()) -> dict[str, Any]:
    """The form's conditions (a multi-select a list, the others as typed; empty left out,
    the service checks them); a profile field's row (fop.<id>, fval.<id>, ffrom/fto.<id>,
    fmin/fmax.<id>) one `fields` condition, its op the kind's value op when only values or
    bounds are given."""
    out: dict[str, Any] = {k: [str(v) for v in values.getall(k, []) if str(v)] for k in LISTS}
    for key in SINGLE:
        text = str(values.get(key, "")).strip()[:32]
        if text:
            out[key] = text
    matches = [m for m in (_field_condition(values, f) for f in fields) if m]
    if matches:
        out["fields"] = matches
    return out


def _field_condition(values: MultiMapping[Any], field: ProfileField) -> dict[str, Any]:
    op = str(values.get(f"fop.{field.id}", "")).strip()[:16]
    cond: dict[str, Any] = {}
    chosen = [str(v) for v in values.getall(f"fval.{field.id}", []) if str(v)]
    if chosen:
        cond["values"] = chosen
    for key in ("from", "to", "min", "max"):
        text = str(values.get(f"f{key}.{field.id}", "")).strip()[:32]
        if text:
            cond[key] = text
    if not op and not cond:
        return {}
    value_ops = OPS[field.kind]
    return {"field": field.id, "op": op or (value_ops[0] if value_ops else "set"), **cond}


def _base(who: auth.Access) -> str:
    return f"/console/{who.tenant.id}/segments"


@page
async def segments(request: web.Request, who: auth.Access) -> web.StreamResponse:
    rows = await _segments(request).listed(who.tenant.id)
    today = datetime.now(who.tenant.tz).date()
    for row in rows:  # 计于 HH:MM in the tenant's time (with the day when not today)
        at = row["counted_at"].astimezone(who.tenant.tz) if row["counted_at"] else None
        row["counted"] = ("" if at is None else at.strftime("%H:%M") if at.date() == today
                          else at.strftime("%m-%d %H:%M"))
        row["gone"] = _gone(row)
    deleted = request.query.get("deleted", "")
    done = notice(request, "seg.deleted").format(name=deleted) if deleted else ""
    return render(request, "segments.html", who=who, active="segments", rows=rows,
                  names=await _names(request, who), notice=done)


def _gone(segment: dict[str, Any]) -> dict[str, str]:
    """The segment's corp tags deleted since (id → last name), marked 标签已删除."""
    return {d["id"]: d["name"] for d in segment["deleted_tags"]}


async def _names(request: web.Request, who: auth.Access) -> dict[str, dict[str, str]]:
    tags, guides, stores = await _segments(request).known(who.tenant.id)
    return {"tags": tags, "guides": guides, "stores": stores,
            "fields": {f.id: f.label for f in _fields(request)}}


def _fields(request: web.Request) -> tuple[ProfileField, ...]:
    return services_of(request).library.profile_fields


def _labelled(request: web.Request, exc: ValidationFailed) -> ValidationFailed:
    """A refused segment with its field as the form labels it in the page's language
    (「添加日期」, 客户资料「生日」) in place of its path (conditions.added_from); the API keeps
    the path and the English reason."""
    path = str(exc.params.get("field", ""))
    if not path:
        return exc
    words = catalog(language(request))
    parts = path.split(".")
    if parts[:2] == ["conditions", "fields"] and len(parts) > 2 and exc.params.get("label"):
        label = words["seg.field_label"].format(label=exc.params["label"])
    else:
        key = parts[-1] if parts[0] in ("conditions", "name") else ""
        key = "added" if key in ("added_from", "added_to") else key
        label = words["seg.label"].format(label=words.get(f"seg.{key}", path))
    return type(exc)(str(exc), code=exc.code, **{**exc.params, "field": label})


@page
async def form(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """新建 / 编辑: the form, filled from the segment (编辑) or from the query (a preview asked
    for with the form's values), with the count those conditions find now."""
    raw_id = request.match_info.get("segment_id")
    segment = (await _segments(request).get(who.tenant.id, _id(raw_id))
               if raw_id is not None else None)
    if "preview" in request.query:
        name = request.query.get("name", "")
        conditions = _conditions(request.query, _fields(request))
        try:
            count: int | None = await _segments(request).preview(who.tenant.id, conditions)
        except ValidationFailed as exc:
            raise _labelled(request, exc) from None
    elif segment is not None:
        name, conditions, count = segment["name"], segment["conditions"], None
    else:
        name, conditions, count = "", {}, None
    return render(request, "segment_form.html", who=who, active="segments",
                  segment=segment, name=name, c=conditions, count=count,
                  names=await _names(request, who), statuses=customer_list.STATUSES,
                  layers=LAYERS, fields=_fields(request), ops=OPS,
                  fc={m["field"]: m for m in reversed(conditions.get("fields", []))})


def _id(raw: str | None) -> int:
    """A segment id from the path; anything else is a segment this tenant does not have."""
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 10 else 0


@page
async def create(request: web.Request, who: auth.Access) -> web.StreamResponse:
    data = await request.post()
    try:
        made = await _segments(request).create(who.tenant.id, str(data.get("name", ""))[:64],
                                               _conditions(data, _fields(request)),
                                               operator="console")
    except ValidationFailed as exc:
        raise _labelled(request, exc) from None
    raise web.HTTPSeeOther(f"{_base(who)}/{made['id']}?saved=1#notice")


@page
async def update(request: web.Request, who: auth.Access) -> web.StreamResponse:
    data = await request.post()
    segment_id = _id(request.match_info["segment_id"])
    try:
        await _segments(request).update(who.tenant.id, segment_id,
                                        str(data.get("name", ""))[:64],
                                        _conditions(data, _fields(request)), operator="console")
    except ValidationFailed as exc:
        raise _labelled(request, exc) from None
    raise web.HTTPSeeOther(f"{_base(who)}/{segment_id}?saved=1#notice")


@page
async def delete(request: web.Request, who: auth.Access) -> web.StreamResponse:
    segment_id = _id(request.match_info["segment_id"])
    gone = await _segments(request).get(who.tenant.id, segment_id)
    await _segments(request).delete(who.tenant.id, segment_id)
    raise web.HTTPSeeOther(f"{_base(who)}?{urlencode({'deleted': gone['name']})}#notice")


@page
async def members(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """A segment: its conditions, count now and members (paged; CSV as the customers page's)."""
    segment_id = _id(request.match_info["segment_id"])
    service = _segments(request)
    segment = await service.get(who.tenant.id, segment_id)
    segment["gone"] = _gone(segment)
    if request.query.get("format") == "csv":
        day = datetime.now(who.tenant.tz).strftime("%Y%m%d")
        return await csv_export(request, who,
                                f"segment-{segment_id}-{who.tenant.id}-{day}.csv",
                                await service.export_csv(who.tenant.id, segment_id))
    found = await service.members(who.tenant.id, segment_id, limit=PAGE,
                                  after=request.query.get("after", ""))
    records = services_of(request).stats.records
    saved = notice(request, "seg.saved") if request.query.get("saved") else ""
    if request.query.get("run_started"):
        saved = notice(request, "seg.run_started").format(
            tag=request.query.get("tag", "")[:64], run=request.query["run_started"][:12])
    runs = await services_of(request).segment_tags.of_segment(who.tenant.id, segment_id)
    return render(request, "segment.html", who=who, active="segments", segment=segment,
                  rows=found.rows, names=await _names(request, who), runs=runs,
                  guide_names=await records.guide_names(who.tenant.id), notice=saved,
                  next_page=urlencode({"after": found.next}) if found.next else "",
                  paged=bool(request.query.get("after")), first_page="")


@page
async def tag(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """批量打标签: start a run (staged in the background; the page lists it with its
    progress); while one for the same tag is staging, refused (409, RunStaging names it)."""
    data = await request.post()
    segment_id = _id(request.match_info["segment_id"])
    run = await services_of(request).segment_tags.start(
        who.tenant.id, segment_id, str(data.get("tag_id", ""))[:64], operator="console")
    query = urlencode({"run_started": run["id"], "tag": run["tag"]})
    raise web.HTTPSeeOther(f"{_base(who)}/{segment_id}?{query}#notice")


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/segments", segments),
        web.post(f"{base}/segments", create),
        web.get(f"{base}/segments/new", form),
        web.get(f"{base}/segments/{{segment_id}}", members),
        web.post(f"{base}/segments/{{segment_id}}", update),
        web.get(f"{base}/segments/{{segment_id}}/edit", form),
        web.post(f"{base}/segments/{{segment_id}}/delete", delete),
        web.post(f"{base}/segments/{{segment_id}}/tag", tag),
    ]
