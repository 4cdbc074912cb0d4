"""The `state` of guidebot channel codes: "gb" + base36 code id + a check character (≤ 30);
群活码 (group join codes) use "gj" the same way, so a group state is never read as a
contact-add state nor the other way round."""

from __future__ import annotations

import string

PREFIX = "gb"
GROUP_PREFIX = "gj"  # 群活码: groupchat/add_join_way state (≤ 30, assumed like add_contact_way)
MAX_STATE_LEN = 30  # WeCom's limit on add_contact_way.state (FACTS §3.4)
_DIGITS = string.digits + string.ascii_lowercase


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def _check(body: str) -> str:
    total = sum((i + 1) * _DIGITS.index(c) for i, c in enumerate(body))
    return _DIGITS[total % 36]


def encode(code_id: int, *, prefix: str = PREFIX) -> str:
    if code_id < 0:
        raise ValueError("code id must not be negative")
    body = _b36(code_id)
    state = f"{prefix}{body}{_check(body)}"
    if len(state) > MAX_STATE_LEN:
        raise ValueError("state would exceed 30 characters")
    return state


def decode(state: str, *, prefix: str = PREFIX) -> int | None:
    """The code id of one of our states (of `prefix`'s kind); None for foreign or mistyped
    states."""
    if not state.startswith(prefix) or len(state) < len(prefix) + 2:
        return None
    body, check = state[len(prefix):-1], state[-1]
    if any(c not in _DIGITS for c in body) or _check(body) != check:
        return None
    return int(body, 36)
