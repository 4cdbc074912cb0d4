"""OpenAPI paths of the commerce admin routes (merged into the admin API document)."""

from __future__ import annotations

from typing import Any

_TENANT = {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"}}
_PERIOD = {"name": "period", "in": "query", "required": True,
           "schema": {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
           "description": "YYYY-MM in the tenant's timezone"}
_ERRORS = {"400": {"description": "invalid input: {error}"},
           "401": {"description": "missing bearer token"},
           "403": {"description": "token not valid for this tenant"},
           "404": {"description": "unknown tenant or record"}}
_FEN = {"type": "integer", "description": "integer fen"}
_STATEMENT = {"type": "object", "required": ["period", "statements"], "properties": {
    "period": {"type": "string"}, "timezone": {"type": "string"}, "settled": {"type": "boolean"},
    "statements": {"type": "array", "items": {"type": "object", "required": [
        "guide", "earned_fen", "clawback_fen", "net_fen", "orders"], "properties": {
        "guide": {"type": "string"}, "earned_fen": _FEN, "clawback_fen": _FEN,
        "adjustment_fen": _FEN, "net_fen": _FEN, "orders": {"type": "integer"}}}}}}
PROPENSITY = {"type": "object", "properties": {
    "score": {"type": "integer", "minimum": 0, "maximum": 100},
    "parts": {"type": "object"}, "visits_30d": {"type": "integer"},
    "dwell_s_30d": {"type": "integer"},
    "top_categories": {"type": "array", "items": {"type": "string"}}}}
CUSTOMER_ORDERS = {"type": "array", "items": {"type": "object", "properties": {
    "order_no": {"type": "string"}, "paid_at": {"type": "string", "format": "date-time"},
    "amount_fen": _FEN, "rule": {"type": "string"}, "guide": {"type": ["string", "null"]},
    "store": {"type": ["string", "null"]},
    "purchase": {"type": "string", "enum": ["first", "repurchase"]}}}}


def _op(summary: str, schema: dict[str, Any], *params: dict[str, Any],
        body: dict[str, Any] | None = None, status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "parameters": [_TENANT, *params], "security": [{"bearer": []}],
        "responses": {status: {"description": "OK", "content": {
            "application/json": {"schema": schema}}}, **_ERRORS}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def commerce_paths() -> dict[str, Any]:
    order_no = {"name": "order_no", "in": "path", "required": True, "schema": {"type": "string"}}
    link_body = {"type": "object", "required": ["guide"], "properties": {
        k: {"type": "string"} for k in ("guide", "sku", "page", "campaign", "customer", "title",
                                        "pic_media_id")}}
    adjustment = {"type": "object", "required": ["guide", "amount_fen", "reason", "operator"],
                  "properties": {"guide": {"type": "string"}, "amount_fen": _FEN,
                                 "reason": {"type": "string"}, "operator": {"type": "string"},
                                 "key": {"type": "string", "description": "idempotency key"}}}
    return {
        "/api/v1/{tenant}/links": {"post": _op(
            "A tracked mini-program link: {token, page, card}", {"type": "object"},
            body=link_body, status="201")},
        "/api/v1/{tenant}/orders/{order_no}": {"get": _op(
            "An order with its attribution rule, evidence, rule version, refunds and ledger",
            {"type": "object"}, order_no)},
        "/api/v1/{tenant}/commissions/statements": {"get": _op(
            "Commission statements of a period (add format=csv for CSV)", _STATEMENT,
            _PERIOD)},
        "/api/v1/{tenant}/commissions/settle": {"post": _op(
            "Lock a period (409 when already settled)", {"type": "object"}, _PERIOD)},
        "/api/v1/{tenant}/commissions/adjustments": {"post": _op(
            "A manual ledger adjustment with reason and operator", {"type": "object"},
            body=adjustment, status="201")},
        "/api/v1/{tenant}/commissions/stores": {"get": _op(
            "Store-credited orders (no guide commission) paid in a period",
            {"type": "object"}, _PERIOD)},
        "/api/v1/{tenant}/commerce/value": {"get": _op(
            "First purchases and repurchases per guide and store", {"type": "object"},
            _PERIOD)},
    }
