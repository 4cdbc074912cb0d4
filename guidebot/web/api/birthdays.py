"""Admin API routes for customers' birthdays (生日关怀): one customer's, or an import."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from guidebot.commerce.birthdays import Birthdays, Row
from guidebot.web.api import birthday_shapes as shapes
from guidebot.web.api import parsing
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.api.shapes import CustomerPath
from guidebot.web.keys import SERVICES


def _birthdays(request: web.Request) -> Birthdays:
    return request.app[SERVICES].birthdays


async def put_birthday(request: web.Request) -> web.Response:
    customer = parsing.path(request, CustomerPath).external_userid
    data = await parsing.body(request, shapes.BirthdaySet)
    return reply(await _birthdays(request).set_one(request.match_info["tenant"], customer,
                                                   data.birthday))


async def import_birthdays(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.BirthdaysImport)
    rows: list[Row | tuple[str, str]] = []
    for raw in data.rows:
        try:
            row = shapes.BirthdayRow.model_validate(raw)
        except ValidationError as exc:
            problem = parsing.field_error(exc)
            rows.append((problem.field, problem.reason))
            continue
        rows.append(Row(row.external_userid, row.unionid, row.birthday))
    return reply(await _birthdays(request).import_rows(request.match_info["tenant"], rows))


API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("PUT", f"{API}/customers/{{external_userid}}/birthday", put_birthday,
             "Set a customer's birthday (HQ's CRM member data; WeCom has none), or forget it "
             "with null; birthday SOPs (trigger `birthday`) enroll on it every year",
             shapes.Birthday, body=shapes.BirthdaySet, params=CustomerPath),
    Endpoint("POST", f"{API}/customers/birthdays", import_birthdays,
             "Set up to 10,000 customers' birthdays, each by external_userid or unionid: "
             "every good row is stored, rows that cannot be read are listed in `failed` "
             "(index, field, reason) and rows naming no customer in `unknown` (none created)",
             shapes.BirthdaysImported, body=shapes.BirthdaysImport),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
