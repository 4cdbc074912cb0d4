"""What one paid order adds, shared by the per-order and the bulk path: its decision (rule,
evidence, lines, commission) and its rows (order, tracking touch, ledger entry), in the column
orders of guidebot.db.repo.commerce_driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from guidebot.commerce import attribution
from guidebot.commerce.evidence import encode_evidence, encode_lines
from guidebot.commerce.rules import RuleSet
from guidebot.commerce.schema import PaidOrder


class LinkFacts(Protocol):
    """A tracked link as both paths hold it (a TrackedLink row, or the bulk path's tuple)."""

    @property
    def token(self) -> str: ...
    @property
    def guide(self) -> str: ...
    @property
    def sku(self) -> str: ...


class Decision(NamedTuple):
    attribution: attribution.Attribution
    commission_fen: int
    evidence: str  # encoded (guidebot.commerce.evidence)
    lines: str  # encoded


def own_touch(order: PaidOrder, link: LinkFacts | None) -> attribution.TouchFact | None:
    """The order's own tracking token as a touch at paid_at (DESIGN §5.4)."""
    if link is None:
        return None
    return attribution.TouchFact(link.guide, order.paid_at, link.token, "order")


def decide_order(rules: RuleSet, order: PaidOrder, *, touch: attribution.TouchFact | None,
                 bindings: Sequence[attribution.BindingFact], link_known: bool) -> Decision:
    """`touch`: the latest touch in the window, the order's own token included."""
    decided = attribution.decide(rules, paid_at=order.paid_at, store_id=order.store_id,
                                 touch=touch, bindings=bindings)
    lines = attribution.price_lines(rules, order.items, earns=decided.guide is not None)
    commission = 0
    for line in lines:
        commission += line.commission_fen
    return Decision(decided, commission,
                    encode_evidence(decided, unknown_tracking=bool(order.tracking)
                                    and not link_known),
                    encode_lines(lines))


def order_row(tenant: str, order: PaidOrder, customer: str | None, decision: Decision,
              version_id: int, *, paid_at: Any, received_at: Any) -> tuple[Any, ...]:
    """commerce_driver.ORDER_COLUMNS; times as the writer wants them (datetime or encoded)."""
    decided = decision.attribution
    return (tenant, order.order_no, customer, order.customer.unionid, order.customer.openid,
            order.store_id, order.tracking[:64], paid_at, order.amount_fen, decided.rule,
            decided.guide, order.store_id if decided.rule == "store" else None,
            decision.commission_fen, version_id, decision.evidence, decision.lines,
            received_at)


def tracking_touch_row(touch_id: int | None, tenant: str, order: PaidOrder,
                       customer: str | None, link: LinkFacts, *,
                       at: Any) -> tuple[Any, ...]:
    """commerce_driver.TOUCH_COLUMNS of the touch an order's known tracking token records."""
    return (touch_id, tenant, customer, order.customer.unionid, order.customer.openid,
            link.guide, link.token, "order", link.sku, "", 0, at)


def earn_key(order_no: str) -> str:
    return f"earn:{order_no}"


def entry_row(tenant: str, *, key: str, kind: str, guide: str, amount_fen: int, period: str,
              created_at: Any, order_no: str | None = None, refund_no: str | None = None,
              reason: str = "", operator: str = "") -> tuple[Any, ...]:
    """commerce_driver.ENTRY_COLUMNS; `created_at` as the writer wants it."""
    return (tenant, key, kind, guide, order_no, refund_no, amount_fen, period, reason[:256],
            operator[:64], created_at)


def earn_row(tenant: str, order_no: str, guide: str, amount_fen: int, *, period: str,
             created_at: Any) -> tuple[Any, ...]:
    """entry_row of an order's earn entry."""
    return entry_row(tenant, key=earn_key(order_no), kind="earn", guide=guide,
                     amount_fen=amount_fen, period=period, created_at=created_at,
                     order_no=order_no)
