"""Commission rules as a versionable value: rates, windows, precedence and their config hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
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
        rates = dict(self.rates)
        return rates.get(f"sku:{sku}") or rates.get(f"category:{category}") or self.default_rate


def half_up(amount_fen: int, rate: str) -> int:
    """amount × rate rounded half-up to a whole fen (exact decimal arithmetic)."""
    value = Decimal(amount_fen) * Decimal(rate)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
