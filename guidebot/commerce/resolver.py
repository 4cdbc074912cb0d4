"""identity.resolve_local for a bulk run, in memory: stored mappings read once, then what the
run's orders teach (kept once known, as the identity table's insert-or-ignore keeps it).

Resolution order as resolve_local: the external_userid, else a known unionid (stored identity,
then a customer profile), else a known openid.
"""

from __future__ import annotations

from collections.abc import Iterable

from guidebot.commerce.schema import CustomerRef, PaidOrder

Key = tuple[str, str]  # ("u" | "o", value): a unionid or an openid


class KnownIdentities:
    def __init__(self, known: dict[Key, str], profiles: dict[str, str]) -> None:
        self.known = known  # ("u" | "o", value) → external_userid: stored, then learned
        self.profiles = profiles  # unionid → external_userid from customer profiles

    def resolve(self, ref: CustomerRef) -> str | None:
        if ref.external_userid:
            return ref.external_userid
        if ref.unionid:
            found = self.known.get(("u", ref.unionid)) or self.profiles.get(ref.unionid)
            if found:
                return found
        return self.known.get(("o", ref.openid)) if ref.openid else None

    def learn(self, ref: CustomerRef, customer: str) -> None:
        if ref.unionid:
            self.known.setdefault(("u", ref.unionid), customer)
        if ref.openid:
            self.known.setdefault(("o", ref.openid), customer)

    def stored_targets(self, ref: CustomerRef) -> list[str]:
        """The customers a stored mapping gives the ref's unionid / openid."""
        found = [self.known.get(("u", ref.unionid)), self.profiles.get(ref.unionid)] \
            if ref.unionid else []
        if ref.openid:
            found.append(self.known.get(("o", ref.openid)))
        return [c for c in found if c]

    def customers_of(self, orders: Iterable[PaidOrder]) -> set[str]:
        """Every external_userid the orders may resolve to."""
        found: set[str] = set()
        for order in orders:
            ref = order.customer
            if ref.external_userid:
                found.add(ref.external_userid)
            if ref.unionid or ref.openid:
                found.update(self.stored_targets(ref))
        return found
