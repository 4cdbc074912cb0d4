"""The OpenAPI 3.1 document of the admin API."""

from __future__ import annotations

from typing import Any

from guidebot.web.api.openapi_commerce import CUSTOMER_ORDERS, PROPENSITY, commerce_paths
from guidebot.web.api.openapi_kf import kf_paths
from guidebot.web.api.openapi_sop import sop_paths

_TENANT = {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"}}
_ERRORS = {
    "401": {"description": "missing bearer token"},
    "403": {"description": "token not valid for this tenant"},
    "404": {"description": "unknown tenant or record"},
}
_FOLLOW = {"type": "object", "properties": {
    "userid": {"type": "string"}, "state": {"type": "string"},
    "added_at": {"type": "string", "format": "date-time"},
    "status": {"type": "string", "enum": ["active", "half", "deleted_by_guide",
                                          "deleted_by_customer", "transferred"]},
    "ended_at": {"type": ["string", "null"], "format": "date-time"}}}
_CUSTOMER = {"type": "object", "required": ["external_userid", "name", "guides",
                                            "exclusive_guide", "tags", "channel"],
             "properties": {
                 "external_userid": {"type": "string"}, "name": {"type": "string"},
                 "unionid": {"type": ["string", "null"]},
                 "guides": {"type": "array", "items": _FOLLOW},
                 "exclusive_guide": {"type": ["string", "null"]},
                 "tags": {"type": "array", "items": {"type": "string"}},
                 "channel": {"type": ["object", "null"], "properties": {
                     "store": {"type": ["string", "null"]}, "guide": {"type": "string"},
                     "campaign": {"type": ["string", "null"]}}},
                 "orders": CUSTOMER_ORDERS, "propensity": PROPENSITY}}
_CHANNEL = {"type": "object", "properties": {
    "id": {"type": "integer"}, "state": {"type": "string"}, "config_id": {"type": "string"},
    "qr_code": {"type": "string"}, "guide": {"type": "string"},
    "store": {"type": ["string", "null"]}, "campaign": {"type": ["string", "null"]},
    "tags": {"type": "array", "items": {"type": "string"}}}}


def _op(summary: str, schema: dict[str, Any], extra_params: tuple[dict[str, Any], ...] = (),
        body: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "parameters": [_TENANT, *extra_params],
        "security": [{"bearer": []}],
        "responses": {status: {"description": "OK", "content": {
            "application/json": {"schema": schema}}}, **_ERRORS}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def openapi_document() -> dict[str, Any]:
    customer_param = {"name": "external_userid", "in": "path", "required": True,
                      "schema": {"type": "string"}}
    channel_body = {"type": "object", "required": ["guide"], "properties": {
        "guide": {"type": "string"}, "store": {"type": "string"},
        "campaign": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "welcome_message": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "guidebot admin API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/v1/{tenant}/customers/{external_userid}": {"get": _op(
                "A customer: guides followed, exclusive guide, tags, channel", _CUSTOMER,
                (customer_param,))},
            "/api/v1/{tenant}/customers/{external_userid}/tags": {"post": _op(
                "Mark/unmark corp tags by name on one guide's relation (mark_tag), mirrored",
                _CUSTOMER, (customer_param,), body={"type": "object", "required": ["guide"],
                                                   "properties": {
                    "guide": {"type": "string"},
                    "add": {"type": "array", "items": {"type": "string"}},
                    "remove": {"type": "array", "items": {"type": "string"}}}})},
            "/api/v1/{tenant}/guides": {"get": _op("Guides with their active customers", {
                "type": "object", "properties": {"guides": {"type": "array"}}})},
            "/api/v1/{tenant}/channels": {
                "get": _op("Channel codes", {"type": "object", "properties": {
                    "channels": {"type": "array", "items": _CHANNEL}}}),
                "post": _op("Create a channel code (add_contact_way)", _CHANNEL,
                            body=channel_body, status="201")},
            **commerce_paths(),
            **sop_paths(_op),
            **kf_paths(_op),
        },
    }
