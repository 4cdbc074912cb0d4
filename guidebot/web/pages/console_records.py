"""The console's record pages: customers, orders with their evidence, commissions
(statements, adjustments, settlement, CSV), content, and the tasks and outbox (pending,
dead-lettered, retry); the SOP pages are in console_sops.py."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from pydantic import BaseModel

from guidebot import idempotency
from guidebot.commerce import periods, statements
from guidebot.commerce.views import customer_card
from guidebot.contacts import erasure, personal_data
from guidebot.contacts import notes as customer_notes
from guidebot.contacts import profile_fields as profile
from guidebot.contacts.views import require_known
from guidebot.content.reload import problems_json
from guidebot.content.sop_spec import DROP_CHANNELS
from guidebot.errors import Conflict, ValidationFailed
from guidebot.sop.tenant_drops import AUDIENCE_ORDER, Draft
from guidebot.stats import content as content_view
from guidebot.stats import customer_list, definitions, order_list, timeline
from guidebot.stats.customer_list import CustomerSearch
from guidebot.stats.records import PAGE, Records
from guidebot.web.audit_trail import nothing_done, record_ids_as
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import (
    LANGS,
    catalog,
    csv_export,
    day_range,
    language,
    local_time,
    notice,
    one_chunk,
    page,
    range_csv,
    render,
    services_of,
    wants_csv,
)


def _names(guides: list[dict[str, Any]]) -> dict[str, str]:
    """Guides' names by userid, from leaderboard rows a page already read."""
    return {g["guide"]: g["name"] for g in guides if g["name"]}


def _records(request: web.Request) -> Records:
    stats = services_of(request).stats
    assert stats is not None
    return stats.records


def _customer_search(request: web.Request,
                     who: auth.Access) -> tuple[dict[str, str], CustomerSearch]:
    q = {k: request.query.get(k, "")
         for k in ("q", "tag", "guide", "status", "added_from", "added_to")}
    return q, CustomerSearch(text=q["q"], tag=q["tag"], guide=q["guide"], status=q["status"],
                             added=customer_list.added_between(
                                 q["added_from"], q["added_to"], who.tenant.tz))


@page
async def customers(request: web.Request, who: auth.Access) -> web.StreamResponse:
    q, search = _customer_search(request, who)
    if wants_csv(request):
        return await _customers_csv(request, who, search)
    records = _records(request)
    found = await records.search(who.tenant.id, search, after=request.query.get("after", ""))
    guides = await records.guides(who.tenant.id)
    filters = {k: v for k, v in q.items() if v}
    return render(request, "customers.html", who=who, active="customers", q=q, rows=found.rows,
                  next_page=urlencode({**filters, "after": found.next}) if found.next else "",
                  paged=bool(request.query.get("after")), first_page=urlencode(filters),
                  export=urlencode(
                      {**filters, "format": "csv"}), statuses=customer_list.STATUSES,
                  names=_names(guides), tags=await records.tag_names(who.tenant.id),
                  guides=guides)


async def _customers_csv(request: web.Request, who: auth.Access,
                         search: CustomerSearch) -> web.StreamResponse:
    chunks = customer_list.export_csv(services_of(request).db, who.tenant.id, who.tenant.tz,
                                      search, fields=services_of(request).library.profile_fields)
    day = datetime.now(who.tenant.tz).strftime("%Y%m%d")
    return await csv_export(request, who, f"customers-{who.tenant.id}-{day}.csv", chunks)


@page
async def customer(request: web.Request, who: auth.Access) -> web.StreamResponse:
    external_userid = request.match_info["external_userid"]
    view = await customer_card(services_of(request).db, who.tenant, external_userid)
    messages = await _records(request).conversation(who.tenant.id, external_userid)
    done = (notice(request, "cust.opt_in_done") if request.query.get("done") else
            notice(request, "cust.birthday_done") if request.query.get("birthday") else
            notice(request, "cust.fields_done") if request.query.get("fields") else "")
    services = services_of(request)
    groups = await services.groups.of_customer(who.tenant.id, external_userid)
    events = await timeline.customer_timeline(services.db, who.tenant, external_userid,
                                              library=services.library,
                                              catalog=services.commerce.catalog)
    notes = await customer_notes.of_customer(services.db, who.tenant, external_userid)
    fields = await profile.of_customer(services.db, who.tenant,
                                       services.library.profile_fields, external_userid)
    return render(request, "customer.html", who=who, active="customers", c=view,
                  messages=messages, groups=groups, events=events, notes=notes, fields=fields,
                  names=await _records(request).guide_names(who.tenant.id),
                  stores=await _records(request).store_names(who.tenant.id), notice=done)


async def _confirmed_customer(request: web.Request, who: auth.Access, needed: str) -> str:
    """The page's customer, known to the tenant, once the form's box is ticked."""
    form = await request.post()
    external_userid = request.match_info["external_userid"]
    await require_known(services_of(request).db, who.tenant.id,
                        external_userid=external_userid)
    if form.get("confirm") != "yes":
        raise ValidationFailed(notice(request, needed))
    return external_userid


@page
async def opt_in(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """HQ undoes a customer's opt-out, at the customer's own request (a ticked box says so)."""
    external_userid = await _confirmed_customer(request, who, "cust.opt_in_confirm_needed")
    await services_of(request).kf.opt_outs.undo(who.tenant.id, external_userid,
                                                operator="console")
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/customers/"
                           f"{quote(external_userid, safe='')}?done=1")


@page
async def erase(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """删除客户个人信息: HQ erases the customer (a ticked box confirms), as the admin API."""
    external_userid = await _confirmed_customer(request, who, "cust.erase_confirm_needed")
    done = await erasure.erase(services_of(request).db, who.tenant.id, external_userid,
                               by="console")
    record_ids_as(request, {"external_userid": done["tombstone"]})
    return render(request, "erased.html", who=who, active="customers", done=done)


@page
async def export_personal_data(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """查阅复制: the customer's personal data as a JSON download (the file name names the
    tenant and the day, never the customer). A form's POST (CSRF-checked, so no other site
    can make a signed-in member download, and a read-only viewer is refused as on every
    form), recorded in 操作日志 as every successful POST is."""
    services = services_of(request)
    document = await personal_data.export(
        services.db, who.tenant, request.match_info["external_userid"],
        fields=services.library.profile_fields, catalog=services.commerce.catalog)
    day = datetime.now(who.tenant.tz).strftime("%Y%m%d")
    return web.Response(
        body=json.dumps(document, ensure_ascii=False, indent=2).encode(),
        content_type="application/json", charset="utf-8", headers={
            "Content-Disposition":
                f'attachment; filename="personal-data-{who.tenant.id}-{day}.json"',
            "Cache-Control": "no-store"})


@page
async def birthday(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """HQ sets or clears the customer's birthday (empty: cleared), as the admin API's PUT."""
    form = await request.post()
    external_userid = request.match_info["external_userid"]
    text = str(form.get("birthday", "")).strip()[:16]
    await services_of(request).birthdays.set_one(who.tenant.id, external_userid, text or None)
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/customers/"
                           f"{quote(external_userid, safe='')}?birthday=1")


@page
async def profile_fields(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """HQ sets the customer's profile fields (客户资料) as the admin API's PUT: the fields the
    form showed (`_fields`), each `f.<id>` (a multi field's ticked options; empty clears)."""
    form = await request.post()
    external_userid = request.match_info["external_userid"]
    fields = services_of(request).library.profile_fields
    shown = set(str(form.get("_fields", "")).split(","))
    values: dict[str, object] = {}
    for field in fields:
        if field.id in shown:
            name = f"f.{field.id}"
            values[field.id] = ([str(v) for v in form.getall(name, [])]
                                if field.kind == "multi" else str(form.get(name, "")))
    await profile.set_values(services_of(request).db, who.tenant, fields, external_userid,
                             values, by=profile.HQ)
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/customers/"
                           f"{quote(external_userid, safe='')}?fields=1#fields")


@page
async def orders(request: web.Request, who: auth.Access) -> web.StreamResponse:
    days = day_range(request, who)
    db = services_of(request).db
    if wants_csv(request):
        return await range_csv(request, who, "orders", days,
                               order_list.export_csv(db, who.tenant, *days))
    found = await order_list.page(db, who.tenant, *days, limit=PAGE,
                                  after=request.query.get("after", ""))
    span = days.shown
    return render(request, "orders.html", who=who, active="orders", rows=found.rows,
                  customers=found.customers, range=span,
                  next_page=urlencode({**span, "after": found.next}) if found.next else "",
                  paged=bool(request.query.get("after")), first_page=urlencode(span),
                  export=days.export(),
                  names=await _records(request).guide_names(who.tenant.id))


@page
async def order(request: web.Request, who: auth.Access) -> web.StreamResponse:
    view = await statements.order_view(services_of(request).db, who.tenant,
                                       request.match_info["order_no"])
    customer = view["customer"].get("external_userid") or ""
    return render(request, "order.html", who=who, active="orders", o=view,
                  names=await _records(request).guide_names(who.tenant.id),
                  customers=await _records(request).customer_names(
                      who.tenant.id, [customer] if customer else []))


def _period(request: web.Request, who: auth.Access, raw: str | None) -> str:
    period = raw or periods.of(datetime.now(who.tenant.tz), who.tenant.tz)
    periods.parse(period)
    return period


@page
async def commissions(request: web.Request, who: auth.Access) -> web.StreamResponse:
    period = _period(request, who, request.query.get("period"))
    body = await statements.statement(services_of(request).db, who.tenant, period)
    if wants_csv(request):
        return await csv_export(request, who, f"commissions-{period}.csv",
                                one_chunk(statements.to_csv(body)))
    done = notice(request, "com.done") if request.query.get("done") else ""
    guides = await _records(request).guides(who.tenant.id)
    return render(request, "commissions.html", who=who, active="commissions", s=body,
                  period=period, notice=done, guides=guides, names=_names(guides))


def _fen(request: web.Request, form: Any) -> int:
    """The adjustment's amount: `amount` in yuan (the console's form), or `amount_fen`."""
    if "amount" in form:
        fen = definitions.fen_of_yuan(str(form["amount"]))
        if fen is None:
            raise ValidationFailed(notice(request, "com.bad_amount"))
        return fen
    text = str(form.get("amount_fen", "")).strip()
    if not text.lstrip("-").isdigit():
        raise ValidationFailed("amount: a whole number of fen, like 500 or -200",
                               code="adjust.amount_fen")
    return int(text)


@page
async def adjust(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    ledger = services_of(request).commerce.ledger
    body, _ = await ledger.adjust(who.tenant, guide=str(form.get("guide", "")),
                               amount_fen=_fen(request, form),
                               reason=str(form.get("reason", ""))[:256],
                                  operator=str(form.get("operator", ""))[:64])
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/commissions?period={body['period']}&done=1")


@page
async def settle(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    period = _period(request, who, str(form.get("period", "")))
    if form.get("confirm") != "yes":
        raise ValidationFailed(notice(request, "com.confirm_needed"))
    await services_of(request).commerce.ledger.settle(  # PeriodSettled: a refusal page
        who.tenant, period, str(form.get("operator", "")).strip()[:64] or "console")
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/commissions?period={period}&done=1")


@page
async def content(request: web.Request, who: auth.Access) -> web.StreamResponse:
    services = services_of(request)
    # the brand's messages as a customer (or, for reminders, a guide) receives them: the
    # sample values are Chinese whatever the console's language (only its chrome is translated)
    words = catalog(LANGS[0])
    sample = {"customer": {"name": words["content.sample_customer"]},
              "guide": {"name": words["content.sample_guide"], "userid": "guide"},
              "store": {"name": words["content.sample_store"]},
              "task": {"title": words["content.sample_task_title"],
                       "count": words["content.sample_task_count"],
                       "customers": words["content.sample_task_customers"]}}
    shop = services.commerce.catalog
    fired = request.query.get("fired", "")
    done = (notice(request, "content.fired").format(
        drop=fired, tasks=request.query.get("tasks", "0")) if fired else "")
    own = await services.sop.tenant_drops.listed(who.tenant.id)
    done = done or _drop_notice(request, who, own)
    return render(request, "content.html", who=who, active="content", notice=done,
                  fire_key=secrets.token_hex(8),
                  messages=content_view.messages(services.library, shop, sample),
                  drops=content_view.drops(services.library) + own,
                  drop_channels=DROP_CHANNELS, audience_fields=AUDIENCE_ORDER,
                  zone=who.tenant.timezone,
                  auto_tags=content_view.auto_tags(services.library,
                                                   enabled=who.tenant.auto_tags.enabled),
                  group_welcome=await services.group_welcome.listed(who.tenant.id),
                  segments=await services.segments.names(who.tenant.id),
                  products=content_view.products(shop),
                  profile_fields=services.library.profile_fields,
                  errors=problems_json(services.library))


@page
async def fire_drop(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """立即发送: the drop's tasks made now; the form's key (one per page view) makes a second
    click of the same page queue nothing more."""
    form = await request.post()
    key = str(form.get("key", ""))[:64]
    fired, replayed = await services_of(request).sop.fire_drop(
        who.tenant.id, request.match_info["drop_id"], key=key)
    if replayed:  # a second click of the same page: nothing made now
        nothing_done(request)
    query = urlencode({"fired": fired["drop"], "tasks": fired["tasks"]})
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/content?{query}#notice")


def _drop_notice(request: web.Request, who: auth.Access, own: list[dict[str, Any]]) -> str:
    """What the 新建群发 form or a 取消 did, for the drop the query names."""
    created, cancelled = request.query.get("created", ""), request.query.get("cancelled", "")
    row = next((d for d in own if d["id"] in (created, cancelled) and d["id"]), None)
    if row is None:
        return ""
    if cancelled:
        return notice(request, "content.drop_cancelled").format(drop=row["id"],
                                                                title=row["title"])
    if "tasks" in request.query:
        return notice(request, "content.drop_sent").format(
            drop=row["id"], title=row["title"], tasks=request.query.get("tasks", "0"))
    return notice(request, "content.drop_created").format(
        drop=row["id"], title=row["title"], at=local_time(row["at"], who.tenant.tz))


def _words(text: str) -> list[str]:
    """An audience box: names split at commas (either width), 、 or spaces."""
    return [w for w in re.split(r"[,，、\s]+", text) if w]


def _local_at(text: str, who: auth.Access) -> str:
    """The form's time (the tenant's wall clock, from a datetime-local box) with its offset;
    as typed when it does not parse (the drop's checks then name the field)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (when.replace(tzinfo=who.tenant.tz) if when.tzinfo is None else when).isoformat()


@page
async def new_drop(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """新建群发: a one-off drop of this tenant, sent now or at a time in the tenant's zone."""
    form = await request.post()

    def text(name: str, limit: int = 2000) -> str:
        return str(form.get(name, "")).strip()[:limit]

    draft = Draft(title=text("title", 128), channel=text("channel", 64),
                  at="now" if text("when") != "at" else _local_at(text("at", 40), who),
                  message=text("message", 64) or None, material=text("material", 64) or None,
                  audience={k: _words(text(k)) for k in AUDIENCE_ORDER},
                  operator=text("operator", 64) or "console",
                  segment=int(text("segment", 9)) if text("segment", 9).isdigit() else None)
    services = services_of(request)
    # the form's key (one per page view): a second click of the same form makes nothing
    # more; the same key with other values (the form edited after going back) is a new drop
    key = text("key", 64)
    probe = _DropForm(title=draft.title, channel=draft.channel, at=draft.at,
                      message=draft.message or "", material=draft.material or "",
                      audience=json.dumps(
                          {**draft.audience, **({"segment": draft.segment}
                                                if draft.segment is not None else {})},
                          ensure_ascii=False, sort_keys=True))
    try:
        replayed = await idempotency.stored(services.db, who.tenant.id, "console-drops", key,
                                            probe)
    except Conflict:
        replayed, key = None, ""
    if replayed is not None:  # a second click of the same form: nothing done now
        nothing_done(request)
    else:
        try:
            created = await services.sop.create_drop(who.tenant.id, draft)
        except ValidationFailed as exc:
            raise _labelled(request, exc) from None
        replayed = {"created": created.drop["id"]}
        if created.firing:
            replayed["tasks"] = str(created.tasks)
        await idempotency.remember(services.db, who.tenant.id, "console-drops", key, probe,
                                   replayed)
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/content?{urlencode(replayed)}#notice")


def _labelled(request: web.Request, exc: ValidationFailed) -> ValidationFailed:
    """A 新建群发 refusal naming a field: the field as the page's language words it (the
    refusal's wording says the rest; the API keeps the English reason)."""
    field = str(exc.params.get("field", ""))
    if not field:
        return exc
    label = catalog(language(request)).get(f"drop.field.{field}", field)
    return type(exc)(str(exc), code=exc.code, **{**exc.params, "field": label})


class _DropForm(BaseModel):
    """What a 新建群发 form asked for, as its key's digest sees it."""

    title: str
    channel: str
    at: str
    message: str
    material: str
    audience: str


@page
async def cancel_drop(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """取消 a drop created here that has not fired."""
    drop_id = request.match_info["drop_id"]
    await services_of(request).sop.cancel_drop(who.tenant.id, drop_id)
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/content?"
                           f"{urlencode({'cancelled': drop_id})}#notice")


@page
async def drop_sends(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """群发记录: a drop's latest firings with their tasks by state; 停止 on each that a stop
    still changes."""
    services = services_of(request)
    drop_id = request.match_info["drop_id"]
    firings = await services.sop.drop_sends(who.tenant.id, drop_id)
    done = ""
    if "not_sent" in request.query:
        done = notice(request, "drop.stopped").format(**{
            k: request.query.get(k, "0")
            for k in ("not_sent", "cancelled_in_wecom", "already_sent", "pending")})
    return render(request, "drop.html", who=who, active="content", notice=done,
                  drop=await services.sop.drop(who.tenant.id, drop_id), firings=firings)


@page
async def stop_drop(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """停止群发 for one firing, then back to the drop's sends with what the stop did."""
    form = await request.post()
    drop_id = request.match_info["drop_id"]
    stopped, changed = await services_of(request).sop.stop_drop(
        who.tenant.id, drop_id, str(form.get("firing", ""))[:64])
    if not changed:  # nothing left to stop: the page says what it found
        nothing_done(request)
    query = urlencode({k: stopped[k] for k in ("not_sent", "cancelled_in_wecom",
                                               "already_sent", "pending")})
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/drops/{quote(drop_id)}?{query}#notice")


@page
async def outbox(request: web.Request, who: auth.Access) -> web.StreamResponse:
    rows = await _records(request).outbox(who.tenant.id)
    done = notice(request, "out.retried") if request.query.get("done") else ""
    return render(request, "outbox.html", who=who, active="outbox", notice=done,
                  pending=rows["pending"], dead=rows["dead"], tasks=rows["tasks"],
                  names=await _records(request).guide_names(who.tenant.id))


@page
async def retry(request: web.Request, who: auth.Access) -> web.StreamResponse:
    raw = request.match_info["item_id"]
    if not raw.isdigit() or not await _records(request).requeue(who.tenant.id, int(raw)):
        raise web.HTTPNotFound()
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/outbox?done=1")


def routes(base: str) -> list[web.RouteDef]:
    from guidebot.web.pages import console_sops

    return [
        *console_sops.routes(base),
        web.get(f"{base}/customers", customers),
        web.get(f"{base}/customers/{{external_userid}}", customer),
        web.post(f"{base}/customers/{{external_userid}}/opt-in", opt_in),
        web.post(f"{base}/customers/{{external_userid}}/birthday", birthday),
        web.post(f"{base}/customers/{{external_userid}}/erase", erase),
        web.post(f"{base}/customers/{{external_userid}}/personal-data", export_personal_data),
        web.post(f"{base}/customers/{{external_userid}}/fields", profile_fields),
        web.get(f"{base}/orders", orders),
        web.get(f"{base}/orders/{{order_no}}", order),
        web.get(f"{base}/commissions", commissions),
        web.post(f"{base}/commissions/adjustments", adjust),
        web.post(f"{base}/commissions/settle", settle),
        web.get(f"{base}/content", content),
        web.post(f"{base}/drops", new_drop),
        web.post(f"{base}/drops/{{drop_id}}/cancel", cancel_drop),
        web.post(f"{base}/drops/{{drop_id}}/fire", fire_drop),
        web.get(f"{base}/drops/{{drop_id}}", drop_sends),
        web.post(f"{base}/drops/{{drop_id}}/stop", stop_drop),
        web.get(f"{base}/outbox", outbox),
        web.post(f"{base}/outbox/{{item_id}}/retry", retry),
    ]
