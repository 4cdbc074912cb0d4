"""Order events (DESIGN §5.3) validated into frozen values; errors name the field and reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from guidebot.commerce.attribution import Item

MAX_ID = 64
MAX_ITEMS = 500


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


def _text(data: dict[str, Any], key: str, where: str = "", *, required: bool = True,
          limit: int = MAX_ID) -> str | None:
    value = data.get(key)
    name = f"{where}{key}"
    if value is None or value == "":
        if required:
            raise SchemaError(name, "is required")
        return None
    if not isinstance(value, str):
        raise SchemaError(name, "must be a string")
    if len(value) > limit:
        raise SchemaError(name, f"must be at most {limit} characters")
    return value


def _time(data: dict[str, Any], key: str) -> datetime:
    raw = _text(data, key, limit=40)
    try:
        at = datetime.fromisoformat(str(raw))
    except ValueError:
        raise SchemaError(key, "must be an ISO 8601 time") from None
    if at.tzinfo is None:
        raise SchemaError(key, "must include a UTC offset, e.g. +08:00")
    return at.astimezone(UTC)


def _int(data: dict[str, Any], key: str, where: str, *, low: int,
         default: int | None = None) -> int:
    value = data.get(key, default)
    if value is None:
        raise SchemaError(f"{where}{key}", "is required")
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SchemaError(f"{where}{key}", f"must be an integer ≥ {low}")
    return value


def _items(data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("items")
    if not isinstance(raw, list) or not raw:
        raise SchemaError("items", "must be a non-empty array")
    if len(raw) > MAX_ITEMS:
        raise SchemaError("items", f"at most {MAX_ITEMS} items")
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise SchemaError(f"items[{index}]", "must be an object")
    return raw


def parse_paid(data: dict[str, Any]) -> PaidOrder:
    order_no = str(_text(data, "order_no"))
    paid_at = _time(data, "paid_at")
    customer = data.get("customer") or {}
    if not isinstance(customer, dict):
        raise SchemaError("customer", "must be an object")
    ref = CustomerRef(*(_text(customer, k, "customer.", required=False, limit=128)
                        for k in ("external_userid", "unionid", "openid")))
    items = []
    for index, raw in enumerate(_items(data)):
        where = f"items[{index}]."
        items.append(Item(str(_text(raw, "sku", where)),
                          _text(raw, "category", where, required=False) or "",
                          _int(raw, "amount_fen", where, low=0),
                          _int(raw, "quantity", where, low=1, default=1)))
    return PaidOrder(order_no, paid_at, ref, _text(data, "tracking", required=False) or "",
                     _text(data, "store_id", required=False), tuple(items))


def parse_refund(data: dict[str, Any]) -> RefundEvent:
    order_no = str(_text(data, "order_no"))
    refund_no = str(_text(data, "refund_no"))
    refunded_at = _time(data, "refunded_at")
    items = []
    for index, raw in enumerate(_items(data)):
        where = f"items[{index}]."
        items.append((str(_text(raw, "sku", where)), _int(raw, "amount_fen", where, low=1)))
    return RefundEvent(order_no, refund_no, refunded_at, tuple(items))


def parse(data: Any) -> PaidOrder | RefundEvent:
    if not isinstance(data, dict):
        raise SchemaError("(body)", "must be a JSON object")
    kind = data.get("type")
    if kind == "order.paid":
        return parse_paid(data)
    if kind == "order.refunded":
        return parse_refund(data)
    raise SchemaError("type", "must be order.paid or order.refunded")
