"""How a refund claws back commission: per order line, half-up, never below zero net."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guidebot.commerce.attribution import Line
from guidebot.commerce.rules import half_up


@dataclass(frozen=True)
class LineState:
    """What earlier refunds already took from one order line."""

    refunded_fen: int = 0
    clawed_fen: int = 0


@dataclass(frozen=True)
class Allocation:
    line: int
    amount_fen: int
    clawback_fen: int


def allocate(lines: Sequence[Line], states: Sequence[LineState],
             items: Sequence[tuple[str, int]]) -> tuple[list[Allocation], int]:
    """Spread refunded (sku, amount) over the order's lines of that sku, in order.

    A line gives back at most what is left of its amount; the clawback is half-up of the
    refunded amount × the line's rate, capped at the commission the line still holds. Returns
    the allocations and the refunded amount that matched no line (unknown sku, over-refund).
    """
    refunded = [s.refunded_fen for s in states]
    clawed = [s.clawed_fen for s in states]
    out: list[Allocation] = []
    unmatched = 0
    for sku, amount in items:
        left = amount
        for index, line in enumerate(lines):
            if line.sku != sku or left <= 0:
                continue
            take = min(left, line.amount_fen - refunded[index])
            if take <= 0:
                continue
            claw = min(half_up(take, line.rate), line.commission_fen - clawed[index])
            refunded[index] += take
            clawed[index] += claw
            left -= take
            out.append(Allocation(index, take, claw))
        unmatched += left
    return out, unmatched


def states_after(line_count: int, allocations: Sequence[Sequence[Allocation]]) -> list[LineState]:
    refunded = [0] * line_count
    clawed = [0] * line_count
    for refund in allocations:
        for a in refund:
            refunded[a.line] += a.amount_fen
            clawed[a.line] += a.clawback_fen
    return [LineState(r, c) for r, c in zip(refunded, clawed, strict=True)]
