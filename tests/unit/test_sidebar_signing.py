"""The JS-SDK signature (the documented vector) and the signed session values."""

from __future__ import annotations

import json
from pathlib import Path

from guidebot.sidebar.tickets import signature
from guidebot.web import signed

VECTOR = json.loads((Path(__file__).resolve().parents[1] / "data/jssdk/signature_vector.json")
                    .read_text(encoding="utf-8"))


def test_signature_matches_the_documented_vector() -> None:
    args = {k: VECTOR[k] for k in ("ticket", "noncestr", "timestamp", "url")}
    assert signature(**args) == VECTOR["signature"]
    # the fragment is not signed; anything else changes the signature
    assert signature(**{**args, "url": VECTOR["url"] + "#/customer"}) == VECTOR["signature"]
    assert signature(**{**args, "url": VECTOR["url"] + "&x=1"}) != VECTOR["signature"]
    assert signature(**{**args, "timestamp": VECTOR["timestamp"] + 1}) != VECTOR["signature"]


def test_sealed_values_open_only_with_their_key_and_before_expiry() -> None:
    key, other = signed.derive_key("s3cret", "sidebar session acme"), signed.derive_key(
        "s3cret", "sidebar session beta")
    value = signed.seal(key, {"t": "acme", "g": "lina"}, 60, clock=lambda: 1000.0)
    assert signed.unseal(key, value, clock=lambda: 1059.0) == {"t": "acme", "g": "lina",
                                                               "exp": 1060}
    assert signed.unseal(key, value, clock=lambda: 1060.0) is None  # expired
    assert signed.unseal(other, value, clock=lambda: 1000.0) is None  # another purpose
    body, tag = value.split(".")
    forged = signed._b64(json.dumps({"t": "acme", "g": "boss", "exp": 2000}).encode())
    assert signed.unseal(key, f"{forged}.{tag}", clock=lambda: 1000.0) is None
    assert signed.unseal(key, "garbage", clock=lambda: 1000.0) is None
    token = signed.csrf_token(key, value)
    assert signed.csrf_ok(key, value, token) and not signed.csrf_ok(key, value + "x", token)
