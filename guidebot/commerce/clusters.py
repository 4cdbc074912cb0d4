"""Which orders of a backfill can affect each other, and in what order the bulk path takes them.

Two orders interact only through an identifier they share — the (resolved) customer, a unionid
or an openid: touches are found by those, an order's tracking touch carries them, an order
teaches unionid/openid → customer and claims the touches recorded under them. Orders linked that
way, directly or through a stored identity, form a cluster; clusters are independent, and
within one the orders are taken in paid_at order (input order on a tie), as they would arrive.
Resolution follows identity.resolve_local (guidebot.commerce.resolver).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.commerce.resolver import KnownIdentities
from guidebot.commerce.schema import PaidOrder
from guidebot.db.repo import commerce_bulk as repo

Key = tuple[str, str]  # ("e" | "u" | "o" | "n", value): customer, unionid, openid, order_no


def _by_customer(order: PaidOrder) -> tuple[str, datetime]:
    return order.customer.external_userid or "", order.paid_at


class Clusters:
    def __init__(self, orders: Sequence[PaidOrder], identities: KnownIdentities) -> None:
        self.identities = identities
        # The same order_no twice: the first in paid_at order is recorded, the other is a
        # duplicate — so they interact too.
        numbers = [o.order_no for o in orders]
        self._repeated: set[str] = set()
        if len(set(numbers)) < len(numbers):
            self._repeated = {n for n, c in Counter(numbers).items() if c > 1}
        self._parent: dict[Key, Key] = {}
        for order in orders:  # an order known by external_userid alone links nothing
            ref = order.customer
            if ref.unionid or ref.openid or order.order_no in self._repeated:
                keys = self._keys(order)
                for key in keys[1:]:
                    self._union(keys[0], key)
                self._find(keys[0])
        self._lowest: dict[Key, str] = {}
        for key in self._parent:
            root = self._find(key)
            if key[0] == "e" and (root not in self._lowest or key[1] < self._lowest[root]):
                self._lowest[root] = key[1]
        if self._parent:
            labels = [self._label(order) for order in orders]
            ranked = sorted(range(len(orders)),
                            key=lambda n: (labels[n] or ("", ""), orders[n].paid_at))
            self.ordered = [orders[n] for n in ranked]
            self._labels: list[Any] = [labels[n] for n in ranked]
        else:  # every order is known by external_userid alone, or by nothing
            self.ordered = sorted(orders, key=_by_customer)
            self._labels = [o.customer.external_userid for o in self.ordered]

    @classmethod
    async def of(cls, s: AsyncSession, tenant: str, orders: Sequence[PaidOrder]) -> Clusters:
        unionids = sorted({o.customer.unionid for o in orders if o.customer.unionid})
        openids = sorted({o.customer.openid for o in orders if o.customer.openid})
        known: dict[Key, str] = {}
        for kind, values in (("unionid", unionids), ("openid", openids)):
            stored = await repo.identities(s, tenant=tenant, kind=kind, values=values)
            known.update(((kind[0], v), e) for v, e in stored.items())
        profiles = await repo.profile_unionids(s, tenant=tenant, unionids=unionids)
        return cls(orders, KnownIdentities(known, profiles))

    def _keys(self, order: PaidOrder) -> list[Key]:
        ref = order.customer
        keys: list[Key] = [("e", ref.external_userid)] if ref.external_userid else []
        keys += [("e", customer) for customer in self.identities.stored_targets(ref)]
        if ref.unionid:
            keys.append(("u", ref.unionid))
        if ref.openid:
            keys.append(("o", ref.openid))
        if order.order_no in self._repeated:
            keys.append(("n", order.order_no))
        return keys

    def _find(self, key: Key) -> Key:
        parent = self._parent
        root = parent.setdefault(key, key)
        while parent[root] != root:
            parent[root] = parent[parent[root]]
            root = parent[root]
        return root

    def _union(self, a: Key, b: Key) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[rb] = ra

    def _label(self, order: PaidOrder) -> tuple[str, str] | None:
        """(lowest external_userid of the cluster or "", a name for the cluster), or None for
        an order without any identifier (it affects no other order)."""
        ref = order.customer
        first = ("e", ref.external_userid) if ref.external_userid else \
            ("u", ref.unionid) if ref.unionid else ("o", ref.openid) if ref.openid else \
            ("n", order.order_no) if order.order_no in self._repeated else None
        if first is None:
            return None
        if first not in self._parent:
            return first[1], ""  # a customer known only by external_userid
        root = self._find(first)
        return self._lowest.get(root, ""), f"{root[0]}:{root[1]}"

    def spans(self, size: int, within: range | None = None) -> Iterator[range]:
        """Positions in `ordered` (all, or `within`) in spans of about `size` orders; a cluster
        is never split."""
        start, stop = (within.start, within.stop) if within is not None else (0, len(self.ordered))
        while start < stop:
            end = min(start + size, stop)
            while end < stop and self._labels[end] is not None \
                    and self._labels[end] == self._labels[end - 1]:
                end += 1
            yield range(start, end)
            start = end

    def orders(self, span: range) -> list[PaidOrder]:
        return self.ordered[span.start:span.stop]
