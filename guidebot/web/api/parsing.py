"""The admin API's edges: bodies, queries and path parameters parsed into pydantic models,
field-named 400s, one error boundary per route, and the route table OpenAPI is built from."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from guidebot.commerce.ledger import PeriodSettled
from guidebot.errors import Conflict, NotFound, StateConflict, ValidationFailed

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.]*): (.+)$", re.DOTALL)


class FieldError(ValidationFailed):
    """A request field that does not satisfy its shape (answered 400)."""

    def __init__(self, name: str, reason: str, status: int = 400) -> None:
        self.field = name
        self.reason = reason
        self.status = status
        super().__init__(f"{name}: {reason}")


def dumps(value: Any) -> str:
    """JSON with Chinese as itself, not \\u escapes."""
    return json.dumps(value, ensure_ascii=False)


def reply(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=dumps)


def error(status: int, name: str | None, reason: str, **extra: Any) -> web.Response:
    message = f"{name}: {reason}" if name else reason
    return reply({"error": message, "field": name, "reason": reason, **extra}, status)


def _field_of(err: Any) -> str:
    """The field's dotted path; "body" for the whole body, '""' for a parameter with an
    empty name (`?=x`)."""
    loc = [str(part) for part in err.get("loc", ())]
    if not loc:
        return "body"
    return ".".join(loc) or '""'


def field_error(exc: ValidationError) -> FieldError:
    """The first problem pydantic found, named by its field (never echoing the input)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    if first.get("type") == "json_invalid":
        return FieldError("body", "must be a JSON object in UTF-8 (" + first["msg"] + ")")
    return FieldError(_field_of(first), first["msg"])


async def body(request: web.Request, model: type[M]) -> M:
    """The JSON body as `model`: non-UTF-8, invalid, too deep or mistyped → FieldError."""
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        if exc.errors()[0].get("type") == "model_type":
            raise FieldError("body", "must be a JSON object") from None
        raise field_error(exc) from None


def query(request: web.Request, model: type[M]) -> M:
    """The query string as `model` (a repeated parameter counts once: its first value)."""
    data = {key: request.query.getone(key) for key in request.query}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc) from None


def path(request: web.Request, model: type[M]) -> M:
    """The path parameters (all but the tenant) as `model`."""
    data = {k: v for k, v in request.match_info.items() if k != "tenant"}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc) from None


def _split(message: str) -> tuple[str | None, str]:
    found = _FIELD_PREFIX.match(message)
    return (found.group(1), found.group(2)) if found else (None, message)


async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One error boundary: every refusal is JSON naming the field where there is one."""
    try:
        return await handler(request)
    except FieldError as exc:
        return error(exc.status, exc.field, exc.reason)
    except Conflict as exc:
        name, reason = _split(str(exc))
        return error(409, name, reason, stored=exc.stored)
    except PeriodSettled as exc:
        return error(409, "period", str(exc))
    except StateConflict as exc:
        name, reason = _split(str(exc))
        return error(409, name or "body", reason, **_coded(exc))
    except ValidationFailed as exc:
        name, reason = _split(str(exc))
        return error(400, name or "body", reason, **_coded(exc))
    except NotFound as exc:
        name, reason = _split(str(exc))
        return error(404, name, reason, **_coded(exc))
    except web.HTTPRequestEntityTooLarge:
        return error(413, "body", "too large")


def _coded(exc: NotFound | ValidationFailed) -> dict[str, Any]:
    """A refusal's `code` (the console's refusal.<code>) where it was raised with one; one
    with an `api_code` answers that as `code` and its own code as `detail`."""
    if exc.code and exc.api_code:
        return {"code": exc.api_code, "detail": exc.code}
    return {"code": exc.code} if exc.code else {}


@dataclass(frozen=True)
class Endpoint:
    """One admin route: its handler and the models its request and answer follow."""

    method: str
    path: str
    handler: Handler
    summary: str
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    params: type[BaseModel] | None = None
    status: int = 200
    errors: dict[int, str] = field(default_factory=dict)
    description: str = ""
    public: bool = False  # no bearer token (the OpenAPI document itself)

    def route(self) -> web.RouteDef:
        handler = self.handler

        async def guarded(request: web.Request) -> web.StreamResponse:
            return await guard(request, handler)

        return web.route(self.method, self.path, guarded)
