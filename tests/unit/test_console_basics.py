"""Money and rate formatting from integers, the console's word lists, session cookies."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from guidebot.settings import TenantSettings
from guidebot.stats.definitions import FIGURES, fen_of_yuan, percent, yuan
from guidebot.usage.metering import MESSAGE_KINDS, NOT_MESSAGES
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


def test_every_word_a_console_template_names_is_in_both_languages() -> None:
    """A missing key would show as itself (`ord.export`) on the page: every literal key a
    template passes to t() is in both catalogs (keys built from a prefix are left out)."""
    zh = json.loads((I18N / "zh-CN.json").read_text(encoding="utf-8"))
    en = json.loads((I18N / "en.json").read_text(encoding="utf-8"))
    used = {key for page in I18N.parent.glob("*.html")
            for key in re.findall(r"""\bt\(\s*'([A-Za-z0-9_.]+)'\s*\)""",
                                  page.read_text(encoding="utf-8"))}
    assert len(used) > 150
    assert sorted(k for k in used if k not in zh or k not in en) == []


def test_every_outbox_kind_has_a_name_on_the_outbox_page() -> None:
    """The outbox page names each row's kind in words: every kind usage metering knows (the
    executors' kinds, which a test of metering keeps in that table) has its word."""
    zh = json.loads((I18N / "zh-CN.json").read_text(encoding="utf-8"))
    en = json.loads((I18N / "en.json").read_text(encoding="utf-8"))
    kinds = {k for ks in MESSAGE_KINDS.values() for k in ks} | NOT_MESSAGES
    assert not {k for k in kinds if f"okind.{k}" not in zh or f"okind.{k}" not in en}


def test_range_presets_in_the_tenants_days() -> None:
    from datetime import date

    from guidebot.stats.overview import parse_range, range_presets

    def shown(today: date) -> dict[str, tuple[str, str]]:
        return {n: (a.isoformat(), b.isoformat()) for n, a, b in range_presets(today)}

    assert shown(date(2026, 1, 3)) == {
        "today": ("2026-01-03", "2026-01-03"), "last_7": ("2025-12-28", "2026-01-03"),
        "last_30": ("2025-12-05", "2026-01-03"), "this_month": ("2026-01-01", "2026-01-03"),
        "last_month": ("2025-12-01", "2025-12-31")}
    assert shown(date(2028, 3, 1))["last_month"] == ("2028-02-01", "2028-02-29")
    for _, start, end in range_presets(date(2026, 12, 6)):  # each is a range pages accept
        assert parse_range(start.isoformat(), end.isoformat(), date(2026, 12, 6)) == (start, end)


def _tenant(token: str) -> TenantSettings:
    return TenantSettings(id="acme", corp_id="ww1", agent_id=1, token="t",
                          encoding_aes_key="k" * 43, secret="s", admin_token=token)


def test_session_cookie_is_bound_to_tenant_token_and_time() -> None:
    acme = _tenant("token-1")
    value = console_auth.issue(acme, now=1_000_000)
    assert console_auth.verify(acme, value, now=1_000_001) is not None
    assert console_auth.verify(acme, value, now=1_000_000 + console_auth.SESSION_S + 1) is None
    assert console_auth.verify(_tenant("token-2"), value, now=1_000_001) is None
    body, _, tag = value.partition(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for changed in ({**fields, "exp": fields["exp"] + 86400}, {**fields, "r": "member",
                                                               "a": "someone"}):
        forged = base64.urlsafe_b64encode(json.dumps(changed).encode()).decode().rstrip("=")
        assert console_auth.verify(acme, f"{forged}.{tag}", now=1_000_001) is None
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


def _refusal_sites() -> list[tuple[str, str, set[str]]]:
    """(file:line, code, the params it is raised with) of every refusal raised with a code
    spelt out in guidebot's source."""
    import ast

    root = I18N.parents[2]
    sites = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            named = {k.arg: k.value for k in node.keywords if k.arg is not None}
            code = named.pop("code", None)
            if isinstance(code, ast.Constant) and isinstance(code.value, str) and code.value:
                sites.append((f"{path.relative_to(root)}:{node.lineno}", code.value,
                              set(named)))
    return sites


def test_every_coded_refusal_is_worded_in_both_languages_with_its_params() -> None:
    import string

    sites = _refusal_sites()
    assert len(sites) >= 25, sites  # the scan finds the raise sites
    for lang in ("zh-CN", "en"):
        words = json.loads((I18N / f"{lang}.json").read_text(encoding="utf-8"))
        for where, code, params in sites:
            wording = words.get(f"refusal.{code}")
            assert wording, (lang, where, code)
            fields = {f for _, f, _, _ in string.Formatter().parse(wording) if f}
            assert fields <= params, (lang, where, code, fields - params)
            wording.format(**dict.fromkeys(params, "x"))
    coded = {code for _, code, _ in sites}
    worded = {k.removeprefix("refusal.") for k in json.loads(
        (I18N / "zh-CN.json").read_text(encoding="utf-8")) if k.startswith("refusal.")}
    assert worded == coded  # no wording left without its refusal


def test_an_sop_steps_time_in_words() -> None:
    from guidebot.web.pages.console import step_offset

    zh = json.loads((I18N / "zh-CN.json").read_text(encoding="utf-8"))
    en = json.loads((I18N / "en.json").read_text(encoding="utf-8"))
    cases = {"+0m": "触发时", "+30m": "触发后 30 分钟", "+90m": "触发后 90 分钟",
             "+2h": "触发后 2 小时", "+48h": "触发后 2 天", "+1d": "触发后 1 天",
             "day 0 at 09:00": "触发当天 09:00", "day 3 at 10:00": "触发 3 天后的 10:00",
             "next tuesday": "next tuesday"}  # not an offset: as written
    assert {text: step_offset(zh, text) for text in cases} == cases
    assert step_offset(en, "day 1 at 10:05") == "10:05 on day +1 after the trigger"
    assert step_offset(en, "+6h") == "6 h after the trigger"
