"""config.toml loading: every error names the file, the key and the problem."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from guidebot.errors import ConfigError
from guidebot.settings import load_settings

GOOD = """
[tenants.acme]
corp_id = "wwacme"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "s3cret-value"
admin_token = "admin-token-value"
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "content_library").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_and_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, GOOD))
    acme = settings.tenant("acme")
    assert acme.api_base == "https://qyapi.weixin.qq.com/cgi-bin/"
    assert acme.timezone == "Asia/Shanghai"
    assert acme.commission.precedence == ("share_link", "exclusive_guide", "store")
    assert acme.alerts.customer_deleted is True  # 删人提醒 is on unless turned off
    assert acme.alerts.watch_notify == ()  # 会话质检 tells nobody unless listed
    assert settings.content_library == tmp_path / "content_library"


@pytest.mark.parametrize(("mutation", "key", "problem"), [
    (lambda t: t.replace('token = "QDG6eK"', 'token = "bad token!"'),
     "tenants.acme.token", "letters or digits"),
    (lambda t: t.replace("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "short"),
     "tenants.acme.encoding_aes_key", "43"),
    (lambda t: t.replace('secret = "s3cret-value"', 'secret = "changeme"'),
     "tenants.acme.secret", "required"),
    (lambda t: t + 'timezone = "Mars/Olympus"\n', "tenants.acme.timezone", "unknown time zone"),
    (lambda t: t + 'colour = "red"\n', "tenants.acme.colour", "unknown key"),
    (lambda t: t.replace("agent_id = 1000002", 'agent_id = "x"'),
     "tenants.acme.agent_id", "must be an integer"),
    (lambda t: t + '[tenants.acme.commission]\nprecedence = ["random"]\n',
     "tenants.acme.commission.precedence", "unknown rule"),
    (lambda t: t + '[tenants.acme.commission]\ndefault_rate = "3%"\n',
     "tenants.acme.commission.default_rate", "decimal"),
    (lambda t: t + 'secret_env = "NOPE_NOT_SET_ANYWHERE"\n', "tenants.acme.secret",
     "either"),
    (lambda t: t + '[tenants.acme.alerts]\ncustomer_deleted = "no"\n',
     "tenants.acme.alerts.customer_deleted", "must be true or false, got str"),
    (lambda t: t + '[tenants.acme.alerts]\ncustomer_deleted = 0\n',
     "tenants.acme.alerts.customer_deleted", "must be true or false, got int"),
    (lambda t: t + '[tenants.acme.alerts]\ncustomer_left = true\n',
     "tenants.acme.alerts.customer_left", "unknown key"),
    (lambda t: t + '[tenants.acme.alerts]\nwatch_notify = "hqboss"\n',
     "tenants.acme.alerts.watch_notify", "must be"),
    (lambda t: t + '[tenants.acme.alerts]\nwatch_notify = ["hqboss", 3]\n',
     "tenants.acme.alerts.watch_notify", "must be a list of member userids"),
    (lambda t: t + '[tenants.acme.alerts]\nmorning_digest = "9:00"\n',
     "tenants.acme.alerts.morning_digest", 'must be a time of day "HH:MM"'),
    (lambda t: t + '[tenants.acme.alerts]\nmorning_digest = "24:00"\n',
     "tenants.acme.alerts.morning_digest", "got '24:00'"),
    (lambda t: t + '[tenants.acme.alerts]\nmorning_digest = 09:00:00\n',
     "tenants.acme.alerts.morning_digest", "must be a string, got time"),
    (lambda t: t + '[tenants.acme.alerts]\nhandoff_reply_minutes = -1\n',
     "tenants.acme.alerts.handoff_reply_minutes", "must be from 0 (off) to 2880"),
    (lambda t: t + '[tenants.acme.alerts]\nhandoff_reply_minutes = 2881\n',
     "tenants.acme.alerts.handoff_reply_minutes", "got 2881"),
    (lambda t: t + '[tenants.acme.console]\nmembers = "zhangmin"\n',
     "tenants.acme.console.members", "must be"),
    (lambda t: t + '[tenants.acme.console]\nviewers = [""]\n',
     "tenants.acme.console.viewers", "must be a list of member userids"),
    (lambda t: t + '[tenants.acme.console]\nmembers = ["a"]\nviewers = ["a"]\n',
     "tenants.acme.console.viewers", "'a' is listed in members too"),
    (lambda t: t + '[tenants.acme.console]\nadmins = ["a"]\n',
     "tenants.acme.console.admins", "unknown key"),
    (lambda t: t + '[tenants.acme.quotas]\napp_msg_per_guide_per_min = 31\n',
     "tenants.acme.quotas.app_msg_per_guide_per_min", "must be at most 30"),
    (lambda t: t + '[tenants.acme.quotas]\napp_msg_per_guide_per_min = 0\n',
     "tenants.acme.quotas.app_msg_per_guide_per_min", "must be at least 1"),
    (lambda t: t + '[tenants.acme.retention]\ninbox_days = 1\n',
     "tenants.acme.retention.inbox_days", "must be 0 (keep forever) or from 2 to 36500"),
    (lambda t: t + '[tenants.acme.retention]\ninbox_days = -3\n',
     "tenants.acme.retention.inbox_days", "got -3"),
    (lambda t: t + '[tenants.acme.retention]\ninbox_days = "30d"\n',
     "tenants.acme.retention.inbox_days", "must be an integer"),
    (lambda t: t + '[tenants.acme.retention]\nkf_text_days = -1\n',
     "tenants.acme.retention.kf_text_days", "must be 0 (keep forever) or from 1"),
    (lambda t: t + '[tenants.acme.retention]\naudit_days = 29\n',
     "tenants.acme.retention.audit_days", "must be 0 (keep forever) or from 30 to 36500"),
    (lambda t: t + '[tenants.acme.retention]\naudit_days = -1\n',
     "tenants.acme.retention.audit_days", "got -1"),
    (lambda t: t + '[tenants.acme.retention]\noutbox_days = 1\n',
     "tenants.acme.retention.outbox_days", "must be 0 (keep forever) or from 2 to 36500"),
    (lambda t: t + '[tenants.acme.retention]\noutbox_days = -2\n',
     "tenants.acme.retention.outbox_days", "got -2"),
    (lambda t: t + '[tenants.acme.retention]\nnotes_days = 30\n',
     "tenants.acme.retention.notes_days", "unknown key"),
    (lambda t: t + '[server.backup]\nat = "03:00"\n', "server.backup.dir", "is required"),
    (lambda t: t + '[server.backup]\ndir = "b"\n', "server.backup.at", "is required"),
    (lambda t: t + '[server.backup]\ndir = "b"\nat = "03:00"\nkeep = 366\n',
     "server.backup.keep", "must be from 1 to 365 (daily copies), got 366"),
    (lambda t: t + '[server.backup]\ndir = "content_library/toml"\nat = "3:00"\n',
     "server.backup.at", 'must be a time of day "HH:MM" (00:00–23:59, UTC), got \'3:00\''),
    (lambda t: t + '[server.backup]\ndir = "config.toml"\nat = "03:00"\n',
     "server.backup.dir", "is not a directory"),
    (lambda t: t + '[server.backup]\ndir = "b"\nat = "03:00"\nhour = 3\n',
     "server.backup.hour", "unknown key"),
])
def test_errors_name_file_key_problem(tmp_path: Path, mutation, key: str,  # type: ignore[no-untyped-def]
                                      problem: str) -> None:
    path = _write(tmp_path, mutation(GOOD))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert problem in info.value.problem


def test_console_members_and_viewers_have_their_roles(tmp_path: Path) -> None:
    text = GOOD + '[tenants.acme.console]\nmembers = ["zhangmin"]\nviewers = ["liwei"]\n'
    console = load_settings(_write(tmp_path, text)).tenant("acme").console
    assert [console.role(u) for u in ("zhangmin", "liwei", "lina")] == ["member", "viewer", None]
    assert load_settings(_write(tmp_path, GOOD)).tenant("acme").console.role("zhangmin") is None


def test_scheduled_backups_are_off_unless_configured(tmp_path: Path) -> None:
    assert load_settings(_write(tmp_path, GOOD)).server.backup is None
    text = GOOD + '[server.backup]\ndir = "backups"\nat = "19:30"\n'
    backup = load_settings(_write(tmp_path, text)).server.backup
    assert backup is not None and backup.keep == 7 and backup.at == time(19, 30)
    assert backup.dir == tmp_path / "backups"  # relative to the config file, created later
    assert not backup.dir.exists()
    text = GOOD + f'[server.backup]\ndir = "{tmp_path / "b"}"\nat = "00:00"\nkeep = 365\n'
    backup = load_settings(_write(tmp_path, text)).server.backup
    assert backup is not None and backup.keep == 365 and backup.dir == tmp_path / "b"


def test_the_customer_deleted_alert_can_be_turned_off(tmp_path: Path) -> None:
    text = GOOD + "[tenants.acme.alerts]\ncustomer_deleted = false\n"
    assert load_settings(_write(tmp_path, text)).tenant("acme").alerts.customer_deleted is False


@pytest.mark.parametrize(("line", "at"), [
    ("", None), ('morning_digest = ""\n', None), ('morning_digest = "09:00"\n', time(9, 0)),
    ('morning_digest = "23:59"\n', time(23, 59)), ('morning_digest = " 07:30 "\n', time(7, 30))])
def test_the_morning_digest_is_off_unless_given_a_time(tmp_path: Path, line: str,
                                                       at: time | None) -> None:
    text = GOOD + "[tenants.acme.alerts]\n" + line
    assert load_settings(_write(tmp_path, text)).tenant("acme").alerts.morning_digest == at


@pytest.mark.parametrize(("line", "minutes"), [
    ("", 10), ("handoff_reply_minutes = 0\n", 0), ("handoff_reply_minutes = 2880\n", 2880)])
def test_the_handoff_reply_reminder_waits_ten_minutes_unless_set(tmp_path: Path, line: str,
                                                                  minutes: int) -> None:
    text = GOOD + "[tenants.acme.alerts]\n" + line
    alerts = load_settings(_write(tmp_path, text)).tenant("acme").alerts
    assert alerts.handoff_reply_minutes == minutes


@pytest.mark.parametrize(("lines", "inbox_days", "kf_text_days"), [
    ("", 30, 0), ("inbox_days = 0\n", 0, 0), ("inbox_days = 2\n", 2, 0),
    ("inbox_days = 90\nkf_text_days = 180\n", 90, 180), ("kf_text_days = 1\n", 30, 1)])
def test_retention_keeps_inbox_items_30_days_and_kf_texts_forever_unless_set(
        tmp_path: Path, lines: str, inbox_days: int, kf_text_days: int) -> None:
    text = GOOD + ("[tenants.acme.retention]\n" + lines if lines else "")
    retention = load_settings(_write(tmp_path, text)).tenant("acme").retention
    assert (retention.inbox_days, retention.kf_text_days) == (inbox_days, kf_text_days)


@pytest.mark.parametrize(("lines", "audit_days"), [
    ("", 0), ("audit_days = 0\n", 0), ("audit_days = 30\n", 30),
    ("audit_days = 365\n", 365)])
def test_the_audit_log_is_kept_forever_unless_set_to_30_days_or_more(
        tmp_path: Path, lines: str, audit_days: int) -> None:
    text = GOOD + ("[tenants.acme.retention]\n" + lines if lines else "")
    assert load_settings(_write(tmp_path, text)).tenant("acme").retention.audit_days \
        == audit_days


@pytest.mark.parametrize(("lines", "outbox_days"), [
    ("", 0), ("outbox_days = 0\n", 0), ("outbox_days = 2\n", 2), ("outbox_days = 90\n", 90)])
def test_outbox_texts_are_kept_forever_unless_set_to_2_days_or_more(
        tmp_path: Path, lines: str, outbox_days: int) -> None:
    text = GOOD + ("[tenants.acme.retention]\n" + lines if lines else "")
    assert load_settings(_write(tmp_path, text)).tenant("acme").retention.outbox_days \
        == outbox_days


def test_secret_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = GOOD.replace('secret = "s3cret-value"', 'secret_env = "ACME_SECRET"')
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="ACME_SECRET is not set"):
        load_settings(path)
    monkeypatch.setenv("ACME_SECRET", "from-env")
    assert load_settings(path).tenant("acme").secret == "from-env"


def test_database_url_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDEBOT_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert load_settings(_write(tmp_path, GOOD)).database_url == "postgresql+asyncpg://u@h/db"


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[tenants.acme\n"))


def test_cli_exits_non_zero_with_the_message(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from guidebot.cli import main

    path = _write(tmp_path, GOOD.replace("agent_id = 1000002\n", ""))
    assert main(["db", "upgrade", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "tenants.acme.agent_id" in err and "is required" in err


@pytest.mark.parametrize(("env_value", "problem"), [
    ("changeme", "ACME_SECRET holds a placeholder"),
    ("", "ACME_SECRET is empty"),
    ("   ", "ACME_SECRET is empty"),
])
def test_placeholder_or_empty_secret_from_environment_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_value: str, problem: str) -> None:
    path = _write(tmp_path, GOOD.replace('secret = "s3cret-value"', 'secret_env = "ACME_SECRET"'))
    monkeypatch.setenv("ACME_SECRET", env_value)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "tenants.acme.secret_env"
    assert problem in info.value.problem


def test_empty_admin_token_is_refused_inline_and_from_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inline = _write(tmp_path, GOOD.replace('"admin-token-value"', '""'))
    with pytest.raises(ConfigError) as info:
        load_settings(inline)
    assert info.value.key == "tenants.acme.admin_token"
    env = _write(tmp_path, GOOD.replace('admin_token = "admin-token-value"',
                                        'admin_token_env = "ACME_ADMIN"'))
    monkeypatch.setenv("ACME_ADMIN", "")
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.key == "tenants.acme.admin_token_env"


def test_optional_secret_placeholder_is_refused_but_absent_is_fine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(_write(tmp_path, GOOD)).tenant("acme").order_secret == ""
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, GOOD + 'order_secret = "changeme"\n'))
    assert info.value.key == "tenants.acme.order_secret"
    monkeypatch.setenv("ACME_ORDERS", "TODO")
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, GOOD + 'order_secret_env = "ACME_ORDERS"\n'))
    assert info.value.key == "tenants.acme.order_secret_env"


def test_database_url_source_is_recorded(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
    path = _write(tmp_path, GOOD)
    assert load_settings(path).database_url_source == "the default"
    path = _write(tmp_path, '[database]\nurl = "sqlite+aiosqlite:///x.db"\n' + GOOD)
    assert load_settings(path).database_url_source == f"[database] url in {path}"
    monkeypatch.setenv("GUIDEBOT_DATABASE_URL", "sqlite+aiosqlite:///y.db")
    assert load_settings(path).database_url_source == "GUIDEBOT_DATABASE_URL"
