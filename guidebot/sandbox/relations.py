"""Member ↔ customer relations, indexed both ways, lean enough for a million of them."""

from __future__ import annotations

from collections.abc import Iterator

from guidebot.sandbox.models import Follow


class Relations:
    """Follows by (userid, external_userid), like a dict, plus O(answer) lookups by member and
    by customer. Two indexes and no tuple keys: about 350 bytes per relation with its
    customer, where a dict of tuples plus the same indexes took twice that."""

    def __init__(self) -> None:
        self._by_member: dict[str, dict[str, Follow]] = {}
        # external_userid → the one member (the usual case) or a tuple of members
        self._members_of: dict[str, str | tuple[str, ...]] = {}
        self._count = 0

    def get(self, key: tuple[str, str], default: Follow | None = None) -> Follow | None:
        userid, external_userid = key
        mine = self._by_member.get(userid)
        return mine.get(external_userid, default) if mine is not None else default

    def __getitem__(self, key: tuple[str, str]) -> Follow:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and self.get(key) is not None

    def __len__(self) -> int:
        return self._count

    def values(self) -> Iterator[Follow]:
        for mine in self._by_member.values():
            yield from mine.values()

    def put(self, follow: Follow) -> Follow:
        """Add, or replace the relation of the same member and customer."""
        mine = self._by_member.setdefault(follow.userid, {})
        if follow.external_userid not in mine:
            self._count += 1
            known = self._members_of.get(follow.external_userid)
            self._members_of[follow.external_userid] = (
                follow.userid if known is None else (*_as_tuple(known), follow.userid))
        mine[follow.external_userid] = follow
        return follow

    def drop(self, userid: str, external_userid: str) -> Follow | None:
        found = self._by_member.get(userid, {}).pop(external_userid, None)
        if found is not None:
            self._count -= 1
            left = tuple(u for u in _as_tuple(self._members_of[external_userid]) if u != userid)
            if not left:
                del self._members_of[external_userid]
            else:
                self._members_of[external_userid] = left[0] if len(left) == 1 else left
        return found

    def of_member(self, userid: str) -> list[Follow]:
        return list(self._by_member.get(userid, {}).values())

    def of_customer(self, external_userid: str) -> list[Follow]:
        members = _as_tuple(self._members_of.get(external_userid, ()))
        return [self._by_member[u][external_userid] for u in members]


def _as_tuple(members: str | tuple[str, ...]) -> tuple[str, ...]:
    return (members,) if isinstance(members, str) else members
