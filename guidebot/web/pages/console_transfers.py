"""The console's customer transfers (客户继承): resigned guides' customers WeCom has not
reassigned, with a form to give them to another guide (离职继承); a form to move an active
guide's customers (在职继承); the transfers so far, and one with each customer's state."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from guidebot.contacts.group_handover import all_refused
from guidebot.contacts.views import guides_view
from guidebot.errors import StateConflict, WeComError
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import notice, page, render, services_of

NOW = timedelta(0)  # 查询结果 asks WeCom about every waiting pair at once
STATE_ORDER = ("waiting", "done", "refused", "limit", "failed", "none", "queued")


@page
async def transfers(request: web.Request, who: auth.Access) -> web.StreamResponse:
    services = services_of(request)
    guides = (await guides_view(services.db, who.tenant))["guides"]
    names = {g["userid"]: g["name"] for g in guides if g["name"]}
    unassigned, failed = [], None
    try:
        unassigned = await services.transfers.unassigned(who.tenant.id)
    except WeComError as exc:  # the rest of the page still works
        failed = exc.errcode
    batches = await services.transfers.batches(who.tenant.id)
    done = notice(request, "tr.checked") if request.query.get("checked") else ""
    if request.query.get("groups", "").isdigit():
        done = notice(request, "tr.groups_done").format(
            n=int(request.query["groups"]), failed=_count(request, "failed"))
        if queued := _count(request, "queued"):
            done += notice(request, "tr.groups_queued").format(queued=queued)
    return render(request, "transfers.html", who=who, active="transfers", names=names,
                  guides=guides, takeovers=[g for g in guides if g["active"]],
                  unassigned=unassigned, unassigned_failed=failed, batches=batches,
                  orphaned=await services.groups.orphaned(who.tenant.id),
                  states=STATE_ORDER, notice=done)


@page
async def start(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    batch_id = await services_of(request).transfers.start(
        who.tenant.id, kind=str(form.get("kind", "")), handover=str(form.get("handover", "")),
        takeover=str(form.get("takeover", "")), message=str(form.get("message", "")).strip())
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/transfers/{batch_id}?started=1")


@page
async def hand_over_groups(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """A resigned guide's groups (those not yet handed over) to a new owner; refused (409)
    when WeCom refused every one."""
    form = await request.post()
    services = services_of(request)
    groups = (await services.groups.orphaned(who.tenant.id)).get(
        str(form.get("handover", "")), [])
    result = await services.group_handover.hand_over(
        who.tenant.id, chat_ids=[g["chat_id"] for g in groups],
        new_owner=str(form.get("new_owner", "")), resigned=True)
    if all_refused(result):
        raise StateConflict(f"WeCom refused all {len(result['failed'])} groups",
                            code="tr.groups_refused", failed=len(result["failed"]))
    # refused by WeCom (an errcode), or a call that failed (None): queued to be retried
    queued = sum(f["errcode"] is None for f in result["failed"])
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/transfers?groups="
                           f"{len(result['transferred'])}&failed={len(result['failed']) - queued}"
                           + (f"&queued={queued}" if queued else ""))


def _count(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "")[:6]
    return int(raw) if raw.isdigit() else 0


@page
async def check(request: web.Request, who: auth.Access) -> web.StreamResponse:
    await services_of(request).transfers.check(who.tenant.id, every=NOW)
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/transfers?checked=1")


@page
async def transfer(request: web.Request, who: auth.Access) -> web.StreamResponse:
    raw = request.match_info["batch_id"]
    if not raw.isdigit() or len(raw) > 15:
        raise web.HTTPNotFound()
    services = services_of(request)
    batch, rows = await services.transfers.batch(who.tenant.id, int(raw))
    stats = services.stats
    names = await stats.records.guide_names(who.tenant.id)
    customers = await stats.records.customer_names(who.tenant.id,
                                                   [r.external_userid for r in rows])
    counts = {s: sum(r.state == s for r in rows) for s in STATE_ORDER}
    started = notice(request, "tr.started") if request.query.get("started") else ""
    return render(request, "transfer.html", who=who, active="transfers", batch=batch,
                  rows=rows, names=names, customers=customers, counts=counts,
                  states=STATE_ORDER, notice=started)



def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/transfers", transfers),
        web.post(f"{base}/transfers", start),
        web.post(f"{base}/transfers/check", check),
        web.post(f"{base}/transfers/groups", hand_over_groups),
        web.get(f"{base}/transfers/{{batch_id}}", transfer),
    ]
