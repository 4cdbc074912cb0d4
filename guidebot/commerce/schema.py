"""Order events (DESIGN §5.3) validated with pydantic into frozen values; every error names the
field and the reason, and the canonical form of an event is what idempotency compares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from guidebot.commerce.attribution import Item

MAX_ID = 64
MAX_CUSTOMER_ID = 128
MAX_ITEMS = 500
MAX_AMOUNT_FEN = 10**12  # ¥10 billion per item: 500 items still sum far inside 63 bits
MAX_QUANTITY = 1_000_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class SchemaError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class CustomerRef:
    external_userid: str | None = None
    unionid: str | None = None
    openid: str | None = None


@dataclass(frozen=True)
class PaidOrder:
    order_no: str
    paid_at: datetime
    customer: CustomerRef
    tracking: str
    store_id: str | None
    items: tuple[Item, ...]

    @property
    def amount_fen(self) -> int:
        total = 0
        for item in self.items:  # a loop: most orders have one or two items
            total += item.amount_fen
        return total


@dataclass(frozen=True)
class RefundEvent:
    order_no: str
    refund_no: str
    refunded_at: datetime
    items: tuple[tuple[str, int], ...]

    @property
    def amount_fen(self) -> int:
        return sum(a for _, a in self.items)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ValueError("must include a UTC offset, e.g. +08:00")
    at = at.astimezone(UTC)
    if not EARLIEST <= at < LATEST:
        raise ValueError("must be between 2000-01-01 and 2100-01-01")
    return at


_Str = Annotated[str, Field(strict=True, max_length=MAX_ID)]
Id = Annotated[_Str, BeforeValidator(_blank_is_none)]
OptionalId = Annotated[_Str | None, BeforeValidator(_blank_is_none)]
CustomerId = Annotated[Annotated[str, Field(strict=True, max_length=MAX_CUSTOMER_ID)] | None,
                       BeforeValidator(_blank_is_none)]
Time = Annotated[datetime, BeforeValidator(_time)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CustomerModel(_Model):
    external_userid: CustomerId = None
    unionid: CustomerId = None
    openid: CustomerId = None


class PaidItemModel(_Model):
    sku: Id
    category: OptionalId = None
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)] = 1
    amount_fen: Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT_FEN)]


class RefundItemModel(_Model):
    sku: Id
    amount_fen: Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT_FEN)]


class PaidModel(_Model):
    type: Literal["order.paid"]
    order_no: Id
    paid_at: Time
    customer: Annotated[CustomerModel, BeforeValidator(_none_is_empty)] = CustomerModel()
    tracking: OptionalId = None
    store_id: OptionalId = None
    items: Annotated[list[PaidItemModel], Field(min_length=1, max_length=MAX_ITEMS)]


class RefundModel(_Model):
    type: Literal["order.refunded"]
    order_no: Id
    refund_no: Id
    refunded_at: Time
    items: Annotated[list[RefundItemModel], Field(min_length=1, max_length=MAX_ITEMS)]


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("function-") and part not in ("str", "none", "int"):
            out += f".{part}" if out else part
    return out or "(body)"


def _reason(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing" or (kind == "string_type" and error.get("input") is None):
        return "is required"
    if kind.startswith("int") or kind in ("greater_than_equal", "less_than_equal"):
        field = error["loc"][-1]
        low, high = {"quantity": (1, MAX_QUANTITY)}.get(str(field), (0, MAX_AMOUNT_FEN))
        if kind == "greater_than_equal":
            low = ctx.get("ge", low)
        return f"must be an integer from {low} to {high}"
    if kind == "string_type":
        return "must be a string"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind in ("list_type", "too_short"):
        return "must be a non-empty array"
    if kind == "too_long":
        return f"at most {MAX_ITEMS} items"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"]).lower()


def _validate(model: type[_Model], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise SchemaError(_where(first["loc"]), _reason(first)) from None


def parse_paid(data: dict[str, Any]) -> PaidOrder:
    m: PaidModel = _validate(PaidModel, data)
    c = m.customer
    return PaidOrder(m.order_no, m.paid_at, CustomerRef(c.external_userid, c.unionid, c.openid),
                     m.tracking or "", m.store_id,
                     tuple(Item(i.sku, i.category or "", i.amount_fen, i.quantity)
                           for i in m.items))


def parse_refund(data: dict[str, Any]) -> RefundEvent:
    m: RefundModel = _validate(RefundModel, data)
    return RefundEvent(m.order_no, m.refund_no, m.refunded_at,
                       tuple((i.sku, i.amount_fen) for i in m.items))


def parse(data: Any) -> PaidOrder | RefundEvent:
    if not isinstance(data, dict):
        raise SchemaError("(body)", "must be a JSON object")
    kind = data.get("type")
    if kind == "order.paid":
        return parse_paid(data)
    if kind == "order.refunded":
        return parse_refund(data)
    raise SchemaError("type", "must be order.paid or order.refunded")


def canonical(event: PaidOrder | RefundEvent) -> str:
    """The event as canonical JSON (UTC times, sorted keys, no optional noise): two bodies
    that mean the same event have the same canonical form, which parse() reads back."""
    body: dict[str, Any]
    if isinstance(event, PaidOrder):
        ref = event.customer
        body = {"type": "order.paid", "order_no": event.order_no,
                "paid_at": event.paid_at.isoformat(),
                "customer": {k: v for k, v in (("external_userid", ref.external_userid),
                                               ("unionid", ref.unionid),
                                               ("openid", ref.openid)) if v},
                "tracking": event.tracking, "store_id": event.store_id,
                "items": [{"sku": i.sku, "category": i.category, "quantity": i.quantity,
                           "amount_fen": i.amount_fen} for i in event.items]}
    else:
        body = {"type": "order.refunded", "order_no": event.order_no,
                "refund_no": event.refund_no, "refunded_at": event.refunded_at.isoformat(),
                "items": [{"sku": s, "amount_fen": a} for s, a in event.items]}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
