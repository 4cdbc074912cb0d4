"""The OpenAPI 3.1 document of the admin API, generated from the routes' pydantic models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from guidebot.web.api.parsing import Endpoint
from guidebot.web.api.shapes import Problem

REF = "#/components/schemas/{model}"
_TENANT = {"name": "tenant", "in": "path", "required": True,
           "schema": {"type": "string", "minLength": 1, "maxLength": 32}}
_REFUSALS = {400: "a field does not fit its shape (named in `field`)",
             401: "missing bearer token", 403: "token not valid for this tenant",
             404: "unknown tenant or record",
             429: "too many wrong tokens or failed sign-ins from this address (code "
                  "auth.throttled; Retry-After): refused whatever the token until then"}


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    return [{"name": name, "in": where, "required": where == "path" or name in required,
             "schema": {k: v for k, v in prop.items() if k not in ("title", "default")}
             | ({"default": prop["default"]} if "default" in prop else {}),
             **({"description": prop["description"]} if "description" in prop else {})}
            for name, prop in schema.get("properties", {}).items()]


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _operation(e: Endpoint, refs: dict[Any, dict[str, Any]],
               problem: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if e.response is not None:
        ok["content"] = _json(refs[(e.response, "serialization")])
    responses: dict[str, Any] = {str(e.status): ok}
    if e.status != 200:
        responses["200"] = {"description": "the stored result of an idempotent replay",
                            **({"content": ok["content"]} if "content" in ok else {})}
    for status, text in {**({} if e.public else _REFUSALS), **e.errors}.items():
        responses[str(status)] = {"description": text, "content": _json(problem)}
    op: dict[str, Any] = {
        "summary": e.summary, "operationId": e.handler.__name__,
        "parameters": ([] if e.public else [_TENANT]) + _parameters(e.params, "path")
        + _parameters(e.query, "query"),
        "responses": responses}
    if e.description:
        op["description"] = e.description
    if not e.public:
        op["security"] = [{"bearer": []}]
    if e.body is not None:
        op["requestBody"] = {"required": True, "content": _json(refs[(e.body, "validation")])}
    return op


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for e in endpoints:
        if e.body is not None:
            wanted.append((e.body, "validation"))
        if e.response is not None:
            wanted.append((e.response, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    problem = refs[(Problem, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, refs, problem)
    return {
        "openapi": "3.1.0",
        "info": {"title": "guidebot admin API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": defs.get("$defs", {})},
        "paths": paths,
    }
