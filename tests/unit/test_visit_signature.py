"""The signed visit beacon's worked example (docs/commerce.md) and its time window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from guidebot.commerce.links import VISIT_WINDOW_S, sign_visit, visit_message, visit_proven

EXAMPLE = json.loads((Path(__file__).parents[1] / "data/commerce/visit_signature.json")
                     .read_text(encoding="utf-8"))


def test_worked_example_numbers() -> None:
    token, query = EXAMPLE["token"], EXAMPLE["query"]
    assert visit_message(token, query) == EXAMPLE["message"]
    assert sign_visit(EXAMPLE["secret"], token, query) == EXAMPLE["sig"]
    url = urlsplit(EXAMPLE["url"])
    assert url.path == f"/t/{token}"
    beacon = dict(parse_qsl(url.query))
    at = datetime.fromtimestamp(int(query["ts"]), UTC)
    assert visit_proven(EXAMPLE["secret"], token, beacon, at)


def test_window_edges_and_tampering() -> None:
    token, secret = EXAMPLE["token"], EXAMPLE["secret"]
    beacon = {**EXAMPLE["query"], "sig": EXAMPLE["sig"]}
    at = datetime.fromtimestamp(int(beacon["ts"]), UTC)
    window = timedelta(seconds=VISIT_WINDOW_S)
    assert visit_proven(secret, token, beacon, at + window)
    assert visit_proven(secret, token, beacon, at - window)
    assert not visit_proven(secret, token, beacon, at + window + timedelta(seconds=1))
    assert not visit_proven(secret, token, {**beacon, "external_userid": "wmOTHER"}, at)
    assert not visit_proven(secret, "another-token", beacon, at)
    assert not visit_proven("", token, beacon, at)  # a tenant without an order secret
    assert not visit_proven(secret, token, {**beacon, "ts": "x"}, at)
    assert visit_proven(secret, token, {**beacon, "dur": "600"}, at)  # dur is not signed


def test_values_are_percent_encoded_like_rfc3986() -> None:
    message = visit_message("T", {"unionid": "oU+/中 x!*", "ts": "1"})
    assert message == "t=T&ts=1&unionid=oU%2B%2F%E4%B8%AD%20x%21%2A"
