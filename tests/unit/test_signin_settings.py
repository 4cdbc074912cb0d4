"""[server] signin_failures, signin_window_minutes (positive integers), client_ip_header
(a plain header name, optional) and beacon_per_minute (0: no limit, or more)."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.errors import ConfigError
from guidebot.settings import load_settings
from tests.unit.test_settings import GOOD, _write


def test_defaults_and_given_values(tmp_path: Path) -> None:
    server = load_settings(_write(tmp_path, GOOD)).server
    assert (server.signin_failures, server.signin_window_minutes,
            server.client_ip_header, server.beacon_per_minute) == (10, 15, "", 0)
    given = ('[server]\nsignin_failures = 5\nsignin_window_minutes = 60\n'
             'client_ip_header = "X-Forwarded-For"\nbeacon_per_minute = 60\n')
    server = load_settings(_write(tmp_path, given + GOOD)).server
    assert (server.signin_failures, server.signin_window_minutes,
            server.client_ip_header, server.beacon_per_minute) == (5, 60, "X-Forwarded-For", 60)


@pytest.mark.parametrize(("line", "key"), [
    ("signin_failures = 0", "server.signin_failures"),
    ("signin_failures = -3", "server.signin_failures"),
    ('signin_failures = "10"', "server.signin_failures"),
    ("signin_window_minutes = 0", "server.signin_window_minutes"),
    ("signin_window_minutes = 1.5", "server.signin_window_minutes"),
    ('client_ip_header = "X-Real-IP: 1.2.3.4"', "server.client_ip_header"),
    ('client_ip_header = "X Forwarded For"', "server.client_ip_header"),
    ("client_ip_header = 1", "server.client_ip_header"),
    ("beacon_per_minute = -1", "server.beacon_per_minute"),
    ('beacon_per_minute = "60"', "server.beacon_per_minute"),
    ('metrics_token = ""', "server.metrics_token"),  # given empty: /metrics would be open
    ('metrics_token_env = "GUIDEBOT_TEST_EMPTY_METRICS"', "server.metrics_token_env"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, line: str, key: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDEBOT_TEST_EMPTY_METRICS", "")
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, f"[server]\n{line}\n" + GOOD))
    assert key in str(caught.value)
