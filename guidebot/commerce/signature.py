"""X-Guidebot-Signature: sha256=<hex HMAC-SHA256 of the raw body>, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Guidebot-Signature"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """False for a missing header, a missing secret or any mismatch."""
    if not secret or not header:
        return False
    expected = sign(secret, body).encode()
    return hmac.compare_digest(expected, header.strip().lower().encode())
