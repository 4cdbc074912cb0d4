"""Signed session values for cookies: payload fields, an expiry and an HMAC-SHA256 tag.

A value is `<base64url JSON>.<base64url tag>`; the key is derived from a secret and a
purpose, so a sidebar session can never pass as an operator session or the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"guidebot {purpose}".encode(), hashlib.sha256).digest()


def seal(key: bytes, fields: dict[str, Any], ttl_s: int, *,
         clock: Callable[[], float] = time.time) -> str:
    body = _b64(json.dumps({**fields, "exp": int(clock()) + ttl_s},
                           separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def unseal(key: bytes, value: str, *,
           clock: Callable[[], float] = time.time) -> dict[str, Any] | None:
    """The fields of a value this key sealed and that has not expired; None otherwise."""
    body, _, tag = value.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not tag or not hmac.compare_digest(expected.encode(), tag.encode()):
        return None
    try:
        fields = json.loads(_unb64(body))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(fields, dict) or not isinstance(fields.get("exp"), int):
        return None
    return fields if fields["exp"] > clock() else None


def csrf_token(key: bytes, session_value: str) -> str:
    """A token bound to one session value (double submit without a second cookie)."""
    return _b64(hmac.new(key, f"csrf:{session_value}".encode(), hashlib.sha256).digest())


def csrf_ok(key: bytes, session_value: str, given: str) -> bool:
    return hmac.compare_digest(csrf_token(key, session_value).encode(), given.encode())


def peek(value: str) -> dict[str, Any] | None:
    """The fields a value claims, unverified (only to tell whose a value says it is)."""
    body, _, _ = value.partition(".")
    try:
        fields = json.loads(_unb64(body))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, ValueError):
        return None
    return fields if isinstance(fields, dict) else None
