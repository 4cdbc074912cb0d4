"""Money and rate formatting from integers, the console's word lists, session cookies."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from guidebot.settings import TenantSettings
from guidebot.stats.definitions import FIGURES, fen_of_yuan, percent, yuan
from guidebot.web.pages import console_auth

I18N = Path(__file__).resolve().parents[2] / "guidebot" / "templates" / "console" / "i18n"


def test_yuan_is_exact_from_fen() -> None:
    assert [yuan(f) for f in (2605, 0, 5, 100, -200, 123456789)] == [
        "¥26.05", "¥0.00", "¥0.05", "¥1.00", "-¥2.00", "¥1,234,567.89"]


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_yuan_round_trips(fen: int) -> None:
    text = yuan(fen).replace("¥", "").replace(",", "")
    whole, cents = text.lstrip("-").split(".")
    assert (-1 if text.startswith("-") else 1) * (int(whole) * 100 + int(cents)) == fen


def test_percent_rounds_half_up_and_has_no_base_for_zero() -> None:
    assert percent(1, 2) == "50.0%" and percent(1, 3) == "33.3%" and percent(2, 3) == "66.7%"
    assert percent(1, 8) == "12.5%" and percent(1, 16) == "6.3%" and percent(3, 0) == "—"


def test_both_languages_define_every_figure_and_the_same_words() -> None:
    zh = json.loads((I18N / "zh-CN.json").read_text(encoding="utf-8"))
    en = json.loads((I18N / "en.json").read_text(encoding="utf-8"))
    assert set(zh) == set(en)
    for figure in FIGURES:
        assert zh[f"fig.{figure}"] and zh[f"def.{figure}"], figure
        assert en[f"fig.{figure}"] and en[f"def.{figure}"], figure


def _tenant(token: str) -> TenantSettings:
    return TenantSettings(id="acme", corp_id="ww1", agent_id=1, token="t",
                          encoding_aes_key="k" * 43, secret="s", admin_token=token)


def test_session_cookie_is_bound_to_tenant_token_and_time() -> None:
    acme = _tenant("token-1")
    value = console_auth.issue(acme, now=1_000_000)
    assert console_auth.verify(acme, value, now=1_000_001) is not None
    assert console_auth.verify(acme, value, now=1_000_000 + console_auth.SESSION_S + 1) is None
    assert console_auth.verify(_tenant("token-2"), value, now=1_000_001) is None
    tenant, expires, nonce, sig = value.split("|")
    later = str(int(expires) + 86400)
    assert console_auth.verify(acme, "|".join((tenant, later, nonce, sig)),
                               now=1_000_001) is None
    assert "token-1" not in value


def test_local_time_shows_stored_instants_in_the_tenants_zone() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from guidebot.web.pages.console import local_time

    shanghai = ZoneInfo("Asia/Shanghai")
    naive_utc = datetime(2026, 12, 5, 16, 30, 5)  # as stored
    assert local_time(naive_utc, shanghai) == "2026-12-06 00:30"
    assert local_time(datetime(2026, 12, 5, 16, 30, 5, tzinfo=UTC), shanghai,
                      seconds=True) == "2026-12-06 00:30:05"
    assert local_time("2026-12-05T16:30:05+00:00", shanghai) == "2026-12-06 00:30"
    assert local_time("2026-12-06T10:00:00+08:00", shanghai) == "2026-12-06 10:00"
    assert local_time("2026-03-29T01:30:00+00:00", ZoneInfo("Europe/Berlin")) == "2026-03-29 03:30"
    assert local_time(None, shanghai) == local_time("", shanghai) == "—"


def test_amounts_typed_in_yuan_become_exact_fen() -> None:
    assert fen_of_yuan("20") == 2000 and fen_of_yuan("-2.5") == -250
    assert fen_of_yuan(" ¥1,299.00 ") == 129_900 and fen_of_yuan("￥0.05") == 5
    assert fen_of_yuan("-¥9.00") == -900 and fen_of_yuan("0.1") == 10
    for bad in ("", "1.005", "abc", "1e3", "--1", "¥", "1.", ".5", "NaN"):
        assert fen_of_yuan(bad) is None, bad


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_yuan_as_shown_reads_back_as_the_same_fen(fen: int) -> None:
    assert fen_of_yuan(yuan(fen)) == fen
