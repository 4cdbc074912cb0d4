"""Customer value: first purchase vs repurchase, and a transparent purchase-propensity score.

Propensity (0–100) from the customer's touches in the last 30 days, each part capped:
  35 × min(visits, 10)/10  +  25 × min(dwell seconds, 600)/600
+ 20 × min(distinct products viewed, 5)/5  +  20 × recency (1 if the last touch is within a day,
falling linearly to 0 at 30 days). Top categories rank the categories of viewed and bought
products by count. The weights are a documented starting point, not a trained model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

LOOKBACK = timedelta(days=30)
WEIGHTS = {"visits": 35, "dwell": 25, "products": 20, "recency": 20}
CAPS = {"visits": 10, "dwell": 600, "products": 5}


@dataclass(frozen=True)
class Visit:
    at: datetime
    dur_s: int
    sku: str


def propensity(visits: Sequence[Visit], now: datetime,
               category_of: dict[str, str], bought: Sequence[str] = ()) -> dict[str, Any]:
    recent = [v for v in visits if now - LOOKBACK <= v.at <= now]
    parts = {
        "visits": min(len(recent), CAPS["visits"]) / CAPS["visits"],
        "dwell": min(sum(v.dur_s for v in recent), CAPS["dwell"]) / CAPS["dwell"],
        "products": min(len({v.sku for v in recent if v.sku}), CAPS["products"])
        / CAPS["products"],
        "recency": _recency(recent, now),
    }
    score = round(sum(WEIGHTS[k] * v for k, v in parts.items()))
    categories = Counter(category_of.get(v.sku, "") for v in recent if v.sku)
    categories.update(category_of.get(sku, "") for sku in bought)
    del categories[""]
    return {"score": score, "parts": {k: round(v, 3) for k, v in parts.items()},
            "visits_30d": len(recent), "dwell_s_30d": sum(v.dur_s for v in recent),
            "top_categories": [c for c, _ in categories.most_common(3)]}


def _recency(recent: Sequence[Visit], now: datetime) -> float:
    if not recent:
        return 0.0
    age = now - max(v.at for v in recent)
    if age <= timedelta(days=1):
        return 1.0
    return max(0.0, 1 - (age - timedelta(days=1)) / (LOOKBACK - timedelta(days=1)))


@dataclass(frozen=True)
class OrderFact:
    order_no: str
    external_userid: str | None
    paid_at: datetime
    guide: str | None
    store: str | None


def purchase_kinds(orders: Sequence[OrderFact]) -> dict[str, str]:
    """order_no → first | repurchase (by paid_at per customer; unknown customers: first)."""
    seen: set[str] = set()
    kinds = {}
    for order in sorted(orders, key=lambda o: (o.paid_at, o.order_no)):
        who = order.external_userid
        kinds[order.order_no] = "repurchase" if who and who in seen else "first"
        if who:
            seen.add(who)
    return kinds


def value_report(purchases: Iterable[tuple[str | None, str | None, bool]]
                 ) -> dict[str, list[dict[str, Any]]]:
    """First purchases and repurchases per guide and per store, from (guide, store, is a
    repurchase) of each order in the period (commerce_orders.period_purchases)."""
    by_guide: dict[str, Counter[str]] = {}
    by_store: dict[str, Counter[str]] = {}
    for guide, store, again in purchases:
        kind = "repurchase" if again else "first"
        for key, table in ((guide, by_guide), (store, by_store)):
            if key:
                table.setdefault(key, Counter())[kind] += 1
    return {
        "guides": [{"guide": k, "first_purchases": c["first"], "repurchases": c["repurchase"]}
                   for k, c in sorted(by_guide.items())],
        "stores": [{"store": k, "first_purchases": c["first"], "repurchases": c["repurchase"]}
                   for k, c in sorted(by_store.items())],
    }
