"""Commission rules as a versionable value: rates, windows, precedence and their config hash."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from guidebot.settings import CommissionSettings


@dataclass(frozen=True)
class RuleSet:
    precedence: tuple[str, ...]
    share_link_window_days: int
    protection_days: int
    binding_validity_days: int
    default_rate: str
    rates: tuple[tuple[str, str], ...]
    # (sku, category) → rate, filled as rates are looked up (not part of the value)
    _rate_of: dict[tuple[str, str], str] = field(default_factory=dict, init=False,
                                                  compare=False, repr=False)

    @classmethod
    def from_settings(cls, c: CommissionSettings) -> RuleSet:
        return cls(tuple(c.precedence), c.share_link_window_days, c.protection_days,
                   c.binding_validity_days, c.default_rate, tuple(sorted(c.rates.items())))

    @classmethod
    def from_json(cls, text: str) -> RuleSet:
        data = json.loads(text)
        return cls(tuple(data["precedence"]), data["share_link_window_days"],
                   data["protection_days"], data["binding_validity_days"],
                   data["default_rate"], tuple(sorted(data["rates"].items())))

    def to_json(self) -> str:
        """Canonical JSON: the same rules always give the same text and hash."""
        data: dict[str, Any] = {
            "precedence": list(self.precedence),
            "share_link_window_days": self.share_link_window_days,
            "protection_days": self.protection_days,
            "binding_validity_days": self.binding_validity_days,
            "default_rate": self.default_rate, "rates": dict(self.rates)}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def rate_for(self, sku: str, category: str) -> str:
        """sku:<s> beats category:<c> beats default_rate (DESIGN §5.4)."""
        found = self._rate_of.get((sku, category))
        if found is None:
            rates = dict(self.rates)
            found = rates.get(f"sku:{sku}") or rates.get(f"category:{category}") \
                or self.default_rate
            self._rate_of[(sku, category)] = found
        return found


@functools.lru_cache(maxsize=4096)
def _ratio(rate: str) -> tuple[int, int]:
    """The rate as an exact fraction n/d (a decimal string has one)."""
    return Decimal(rate).as_integer_ratio()


def half_up(amount_fen: int, rate: str) -> int:
    """amount × rate rounded half-up (ties away from zero) to a whole fen, exactly: integer
    arithmetic on the rate's fraction, the same result as Decimal's ROUND_HALF_UP."""
    numerator, denominator = _ratio(rate)
    product = amount_fen * numerator
    rounded = (2 * abs(product) + denominator) // (2 * denominator)
    return -rounded if product < 0 else rounded
