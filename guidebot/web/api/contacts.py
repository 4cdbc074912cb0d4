"""Admin JSON API routes (DESIGN §5.3): customers, guides, channel codes, OpenAPI."""

from __future__ import annotations

from aiohttp import web

from guidebot import idempotency
from guidebot.commerce.views import customer_card
from guidebot.contacts import erasure, notes, personal_data, views
from guidebot.contacts import profile_fields as profile
from guidebot.contacts.channels import Edit
from guidebot.errors import WeComError
from guidebot.services import Services
from guidebot.stats import customer_list, timeline
from guidebot.stats.customer_list import CustomerSearch
from guidebot.web.api import (
    erasure_shapes,
    parsing,
    personal_data_shapes,
    profile_shapes,
    shapes,
    timeline_shapes,
)
from guidebot.web.api.parsing import Endpoint, FieldError, reply
from guidebot.web.audit_trail import nothing_done, record_access, record_ids_as
from guidebot.web.keys import SERVICES

# WeCom's answer to a userid it does not know: 40003 不合法的UserID (from memory, as the
# sandbox's errors.py says; not confirmed in FACTS.md) and 60111 UserID不存在 [unconfirmed].
UNKNOWN_USERID = (40003, 60111)


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _tenant(request: web.Request) -> str:
    return request.match_info["tenant"]


async def get_customer(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    services = _services(request)
    return reply(await customer_card(services.db, services.settings.tenant(
        _tenant(request)), customer))


async def customer_timeline(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    q = parsing.query(request, timeline_shapes.TimelineQuery)
    services = _services(request)
    events = await timeline.customer_timeline(
        services.db, services.settings.tenant(_tenant(request)), customer,
        library=services.library, catalog=services.commerce.catalog, limit=q.limit)
    return reply({"external_userid": customer, "events": events})


async def customer_notes(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    q = parsing.query(request, timeline_shapes.NotesQuery)
    services = _services(request)
    found = await notes.of_customer(services.db, services.settings.tenant(_tenant(request)),
                                    customer, limit=q.limit + 1, before=q.before)
    page = found[:q.limit]
    return reply({"external_userid": customer, "notes": page,
                  "next": page[-1]["id"] if len(found) > q.limit else None})


async def customer_fields(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    services = _services(request)
    tenant = services.settings.tenant(_tenant(request))
    return reply({"external_userid": customer, "fields": await profile.of_customer(
        services.db, tenant, services.library.profile_fields, customer)})


async def set_customer_fields(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    data = await parsing.body(request, profile_shapes.FieldsSet)
    services = _services(request)
    await profile.set_values(services.db, services.settings.tenant(_tenant(request)),
                             services.library.profile_fields, customer, data.values, by=profile.HQ)
    return await customer_fields(request)


async def list_customers(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.CustomersQuery)
    services = _services(request)
    tenant = services.settings.tenant(_tenant(request))
    added = customer_list.added_between(q.added_from, q.added_to, tenant.tz)
    found = await customer_list.page(
        services.db, tenant.id,
        CustomerSearch(text=q.q, tag=q.tag, guide=q.guide, status=q.status, added=added),
        limit=q.limit, after=q.after)
    return reply({"customers": [customer_list.listed(row) for row in found.rows],
                  "next": found.next})


async def get_guides(request: web.Request) -> web.Response:
    services = _services(request)
    return reply(await views.guides_view(services.db, services.settings.tenant(
        _tenant(request))))


async def list_channels(request: web.Request) -> web.Response:
    services = _services(request)
    return reply(await views.channels_view(services.db, services.settings.tenant(
        _tenant(request))))


async def acquisition_quota(request: web.Request) -> web.Response:
    """The paid 获客助手 link quota: the last reading, or WeCom's now with ?refresh=true."""
    q = parsing.query(request, shapes.AcquisitionQuery)
    acquisition, tenant = _services(request).acquisition, _tenant(request)
    if not q.refresh:
        return reply(await acquisition.quota(tenant))
    try:
        return reply(await acquisition.read_quota(tenant))
    except WeComError as exc:
        return parsing.error(502, None, f"WeCom refused customer_acquisition_quota: errcode "
                             f"{exc.errcode}; the last reading is kept")


async def create_channel(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.ChannelCreate)
    services, tenant = _services(request), _tenant(request)
    replayed = await idempotency.stored(services.db, tenant, "channels", data.key, data)
    if replayed is not None:  # the stored answer: nothing done now
        nothing_done(request)
        return reply(replayed)
    try:
        code = await services.channels.create(
            tenant, guide=data.guide or "", guides=data.guides, store=data.store,
            campaign=data.campaign, tags=data.tags, welcome_message=data.welcome_message,
            kind=data.kind, backup_guides=data.backup_guides, daily_limit=data.daily_limit,
            skip_verify=data.skip_verify, auto_accept_hours=data.auto_accept_hours)
    except WeComError as exc:
        if exc.errcode in UNKNOWN_USERID:
            return parsing.error(422, "guide", f"WeCom does not know this userid "
                                 f"(errcode {exc.errcode}); nothing was stored")
        return parsing.error(502, None, f"WeCom refused: errcode {exc.errcode}")
    result = views.channel_json(code)
    await idempotency.remember(services.db, tenant, "channels", data.key, data, result)
    return reply(result, status=201)


async def edit_channel(request: web.Request) -> web.Response:
    """HQ changes a code (换人不换码): its guides asked of WeCom first, then the daily limit's
    rotation decided again."""
    services, tenant = _services(request), _tenant(request)
    code_id = parsing.path(request, shapes.ChannelPath).code_id
    data = await parsing.body(request, shapes.ChannelEdit)
    change = Edit(
        guides=_tuple(data.guides), backup_guides=_tuple(data.backup_guides),
        daily_limit=data.daily_limit, store=data.store, campaign=data.campaign,
        tags=_tuple(data.tags), welcome_message=data.welcome_message,
        skip_verify=data.skip_verify, auto_accept_hours=data.auto_accept_hours)
    try:
        code = await services.channels.edit(tenant, code_id, change)
    except WeComError as exc:
        if exc.errcode in UNKNOWN_USERID:
            return parsing.error(422, "guides", f"WeCom does not know a userid "
                                 f"(errcode {exc.errcode}); nothing was changed")
        return parsing.error(502, None, f"WeCom refused: errcode {exc.errcode}; nothing "
                             "was changed")
    return reply(views.channel_json(await services.channels.get(tenant, code.id or 0)))


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None


async def delete_channel(request: web.Request) -> web.Response:
    services, tenant = _services(request), _tenant(request)
    code_id = parsing.path(request, shapes.ChannelPath).code_id
    try:
        code = await services.channels.delete(tenant, code_id)
    except WeComError as exc:
        return parsing.error(502, None, f"WeCom refused: errcode {exc.errcode}; the code "
                             "still works")
    return reply(views.channel_json(code))


async def edit_customer_tags(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    data = await parsing.body(request, shapes.TagEdit)
    if not data.add and not data.remove:
        raise FieldError("add", "add or remove must name at least one tag")
    services, tenant = _services(request), _tenant(request)
    await views.require_known(services.db, tenant, external_userid=customer, guide=data.guide)
    outcome = await services.tags.edit(
        tenant, guide=data.guide, external_userid=customer, add=data.add, remove=data.remove)
    if outcome.status != "done":
        return parsing.error(409 if outcome.no_relation
                             else 502, "guide", f"WeCom refused mark_tag: {outcome.error}")
    return await get_customer(request)


async def undo_opt_out(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    services, tenant = _services(request), _tenant(request)
    await views.require_known(services.db, tenant, external_userid=customer)
    await services.kf.opt_outs.undo(tenant, customer, operator="api")
    return await get_customer(request)


async def erase_customer(request: web.Request) -> web.Response:
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    done = await erasure.erase(_services(request).db, _tenant(request), customer, by="admin")
    record_ids_as(request, {"external_userid": done["tombstone"]})
    return reply(done)


async def export_personal_data(request: web.Request) -> web.Response:
    """查阅复制: everything held about the customer; the access is recorded in 操作日志."""
    customer = parsing.path(request, shapes.CustomerPath).external_userid
    services = _services(request)
    document = await personal_data.export(
        services.db, services.settings.tenant(_tenant(request)), customer,
        fields=services.library.profile_fields, catalog=services.commerce.catalog)
    await record_access(request)
    return reply(document)


async def get_openapi(request: web.Request) -> web.Response:
    from guidebot.web.api.document import document

    return reply(document())


API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("GET", "/api/v1/openapi.json", get_openapi, "This document", public=True),
    Endpoint("GET", f"{API}/customers", list_customers,
             "Customers a search finds, newest first, a page at a time (follow `next` as "
             "`after` until it is null); the console's customer list and CSV export read the "
             "same", shapes.CustomerList, query=shapes.CustomersQuery),
    Endpoint("GET", f"{API}/customers/{{external_userid}}", get_customer,
             "A customer: guides followed, exclusive guide, tags, channel, orders",
             shapes.Customer, params=shapes.CustomerPath),
    Endpoint("GET", f"{API}/customers/{{external_userid}}/timeline", customer_timeline,
             "客户动态: the customer's latest events, newest first (follow relation changes, "
             "card opens, orders, SOP steps sent, group joins and leaves; never message text)",
             timeline_shapes.Timeline, params=shapes.CustomerPath,
             query=timeline_shapes.TimelineQuery),
    Endpoint("GET", f"{API}/customers/{{external_userid}}/notes", customer_notes,
             "跟进记录: the guides' follow-up notes about the customer, newest first, a page "
             "at a time (follow `next` as `before` until it is null)",
             timeline_shapes.Notes, params=shapes.CustomerPath,
             query=timeline_shapes.NotesQuery),
    Endpoint("GET", f"{API}/customers/{{external_userid}}/fields", customer_fields,
             "客户资料: the customer's profile fields (content_library/profile_fields.toml) "
             "with their values, who set each (a guide or \"hq\") and when",
             profile_shapes.CustomerFields, params=shapes.CustomerPath),
    Endpoint("PUT", f"{API}/customers/{{external_userid}}/fields", set_customer_fields,
             "客户资料: set or clear (null) some of the customer's profile fields as HQ (a "
             "CRM); each value is checked against its field's kind and options; answers the "
             "fields as GET does", profile_shapes.CustomerFields,
             body=profile_shapes.FieldsSet, params=shapes.CustomerPath),
    Endpoint("GET", f"{API}/guides", get_guides, "Guides with their active customers",
             shapes.Guides),
    Endpoint("GET", f"{API}/channels", list_channels, "Channel codes", shapes.Channels),
    Endpoint("GET", f"{API}/channels/acquisition", acquisition_quota,
             "The paid 获客助手 link quota as last read (daily, and when WeCom says it runs "
             "low), with a warning when it is low or exhausted and the tenant has link codes; "
             "`refresh=true` reads it from WeCom now", shapes.AcquisitionQuota,
             query=shapes.AcquisitionQuery,
             errors={502: "refresh: WeCom refused customer_acquisition_quota (the last "
                          "reading is kept)"}),
    Endpoint("PATCH", f"{API}/channels/{{code_id}}", edit_channel,
             "Change a channel code's guides, daily limit, backups, store, campaign, tags, "
             "welcome or 自动通过好友 (skip_verify, auto_accept_hours); the QR code or link "
             "stays the same (换人不换码)", shapes.Channel,
             body=shapes.ChannelEdit, params=shapes.ChannelPath),
    Endpoint("DELETE", f"{API}/channels/{{code_id}}", delete_channel,
             "Delete a channel code in WeCom; it stays listed with what it brought",
             shapes.Channel, params=shapes.ChannelPath),
    Endpoint("POST", f"{API}/channels", create_channel,
             "Create a channel code for a guide: a 「联系我」 QR code, or (`kind: link`) a "
             "获客助手 acquisition link (optional idempotency `key`)",
             shapes.Channel, body=shapes.ChannelCreate, status=201,
             errors={409: "the key was used with another body (`stored` holds the result)",
                     422: "WeCom does not know the guide's userid; nothing was stored",
                     502: "WeCom refused add_contact_way; nothing was stored"}),
    Endpoint("POST", f"{API}/customers/{{external_userid}}/tags", edit_customer_tags,
             "Mark/unmark corp tags by name on one guide's relation (mark_tag), mirrored",
             shapes.Customer, body=shapes.TagEdit, params=shapes.CustomerPath,
             errors={409: "WeCom says this guide and customer have no relation",
                     502: "WeCom refused mark_tag"}),
    Endpoint("DELETE", f"{API}/customers/{{external_userid}}/opt-out", undo_opt_out,
             "Undo the customer's 微信客服 opt-out, at their request: the opt-out tag comes off "
             "their active relations; SOPs may enroll them again from their next trigger "
             "(idempotent: a customer who has not opted out is answered as is)",
             shapes.Customer, params=shapes.CustomerPath),
    Endpoint("GET", f"{API}/customers/{{external_userid}}/personal-data", export_personal_data,
             "查阅复制: everything guidebot holds about the customer (PIPL's right to access "
             "and copy), by section with Chinese titles: profile, guides added (remark, "
             "description), exclusive-guide history, tags, 客户资料, birthday, follow-up "
             "notes, opt-out, 微信客服 messages (the latest 5,000), groups, orders, card "
             "visits, pre-tags. Reads only; each export is recorded in 操作日志",
             personal_data_shapes.PersonalData, params=shapes.CustomerPath,
             errors={404: "no such customer (or erased)"}),
    Endpoint("POST", f"{API}/customers/{{external_userid}}/erase", erase_customer,
             "删除客户个人信息: erase the customer (PIPL). Their name, avatar, unionid, tags, "
             "remarks, 客户资料, birthday, notes, pre-tags, 微信客服 texts, group memberships "
             "and handled callbacks are deleted; orders, refunds, commissions and the "
             "statistics' events are kept under the answered tombstone pseudonym (no figure "
             "changes). All or nothing", erasure_shapes.Erasure, params=shapes.CustomerPath,
             errors={404: "no such customer (or already erased)",
                     409: "`code` customer.still_following: the customer still follows a "
                          "guide in WeCom (the relation must end first); "
                          "customer.callbacks_pending: a callback naming them is not handled "
                          "yet"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
