"""CSV backfill of orders and refunds: rows grouped into events, validated before anything lands.

Columns (header row required): order_no, paid_at, sku, amount_fen and optionally category,
quantity, external_userid, unionid, openid, tracking, store_id; refund rows add refund_no and
refunded_at. Rows sharing order_no (and refund_no) form one event.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guidebot.commerce.schema import PaidOrder, RefundEvent, SchemaError, parse

REQUIRED = ("order_no", "sku", "amount_fen")
CUSTOMER = ("external_userid", "unionid", "openid")


@dataclass(frozen=True)
class Problem:
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


def _int(value: str, row: int, field: str, problems: list[Problem]) -> int | None:
    try:
        return int(value)
    except ValueError:
        problems.append(Problem(row, field, "must be an integer"))
        return None


def _group(rows: Iterable[dict[str, str]], problems: list[Problem]) -> dict[tuple[str, str],
                                                                          dict[str, Any]]:
    events: dict[tuple[str, str], dict[str, Any]] = {}
    for number, row in enumerate(rows, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        amount = _int(row.get("amount_fen", ""), number, "amount_fen", problems)
        quantity = _int(row.get("quantity") or "1", number, "quantity", problems)
        key = (row.get("order_no", ""), row.get("refund_no", ""))
        event = events.setdefault(key, _head(row, number))
        item: dict[str, Any] = {"sku": row.get("sku", ""), "amount_fen": amount}
        if not key[1]:
            item.update(category=row.get("category", ""), quantity=quantity)
        event["items"].append(item)
    return events


def _head(row: dict[str, str], number: int) -> dict[str, Any]:
    if row.get("refund_no"):
        return {"type": "order.refunded", "order_no": row.get("order_no"), "_row": number,
                "refund_no": row["refund_no"], "refunded_at": row.get("refunded_at"),
                "items": []}
    return {"type": "order.paid", "order_no": row.get("order_no"), "_row": number,
            "paid_at": row.get("paid_at"), "tracking": row.get("tracking") or None,
            "store_id": row.get("store_id") or None,
            "customer": {k: row[k] for k in CUSTOMER if row.get(k)}, "items": []}


def read_events(path: Path) -> tuple[list[PaidOrder | RefundEvent], list[Problem]]:
    """Orders first, then refunds; every problem found, with its (first) row number."""
    problems: list[Problem] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            return [], [Problem(1, c, "column missing") for c in missing]
        grouped = _group(reader, problems)
    events: list[PaidOrder | RefundEvent] = []
    for raw in grouped.values():
        row = raw.pop("_row")
        try:
            events.append(parse(raw))
        except SchemaError as exc:
            problems.append(Problem(row, exc.field, exc.reason))
    events.sort(key=lambda e: isinstance(e, RefundEvent))
    return events, problems
