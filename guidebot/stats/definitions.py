"""Every figure's definition in one place: the thresholds here, the wording (zh-CN, en) in
guidebot/templates/console/i18n/ under `def.<figure>`; pages and the API use both."""

from __future__ import annotations

import re
from datetime import timedelta

from guidebot.contacts import relations

NEW_WITHIN = timedelta(days=30)  # new: first added within 30 days before the end of the range
ACTIVE_WITHIN = timedelta(days=90)  # active: bought within 90 days before the end
# Value tiers by a customer's paid GMV so far, highest first (fen); below the last: none.
VALUE_TIERS: tuple[tuple[str, int], ...] = (("high", 100_000), ("mid", 20_000), ("low", 1))

ADDED = "added"
DELETIONS = frozenset({"deleted_by_guide", "deleted_by_customer"})
ENDINGS = DELETIONS | {"transferred"}  # the relation with that guide is over
TRANSFERRED_IN = relations.TRANSFERRED_IN  # the customer follows a guide again, not added
GUIDE_RULES = frozenset({"share_link", "exclusive_guide"})  # an order credited to a guide

FIGURES = ("adds", "adds_code", "adds_other", "deletions", "net_growth", "base",
           "new_customers_code", "new_customers_other", "first_purchases", "repurchases",
           "first_purchase_rate", "repurchase_rate", "orders", "gmv", "orders_new", "gmv_new",
           "orders_existing", "gmv_existing", "orders_all", "gmv_all", "commission",
           "layer_new", "layer_active", "layer_dormant", "layer_lost", "tier_high", "tier_mid",
           "tier_low", "tier_none", "customers", "task_confirmation_rate", "funnel_added",
           "groups", "group_customers", "group_joined", "group_left", "group_joins",
           "group_leaves", "group_net", "group_members",
           # 接待时效 (chat/reply_times.py)
           "handoffs", "handoff_replied", "first_response_median", "first_response_average",
           "replied_within", "waiting_now", "overdue_now")


def yuan(fen: int) -> str:
    """¥26.05 from 2605, exactly (integer arithmetic, no floats)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


_YUAN = re.compile(r"(-?)[¥￥]?(\d+)(?:\.(\d{1,2}))?")


def fen_of_yuan(text: str) -> int | None:
    """Fen from an amount in yuan as people type it ("20", "-2.5", "¥1,299.00", "-¥9.00"),
    exactly (no floats); None when it is not such an amount (more than two decimals, say)."""
    found = _YUAN.fullmatch(text.strip().replace(",", "").replace(" ", ""))
    if found is None:
        return None
    sign, whole, cents = found.groups()
    fen = int(whole) * 100 + int((cents or "").ljust(2, "0"))
    return -fen if sign else fen


def percent(part: int, whole: int) -> str:
    """A rate with one decimal, half-up, from integers ("—" when there is no base)."""
    if whole <= 0:
        return "—"
    tenths = (part * 1000 * 2 + whole) // (whole * 2)
    return f"{tenths // 10}.{tenths % 10}%"
