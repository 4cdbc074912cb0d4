"""From zero: `guidebot init` → `guidebot check` (against a sandbox) → `guidebot serve`,
each a real process in a fresh directory, and database errors as one readable line."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.support.procs import Server, clean_env, free_port, run

SECRETS = {
    "ACME_WECOM_TOKEN": "QDG6eK",
    "ACME_WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "ACME_WECOM_SECRET": "acme-app-secret-from-env",
    "ACME_ADMIN_TOKEN": "acme-admin-token-from-env",
}


def test_init_check_serve_on_a_fresh_directory(tmp_path: Path) -> None:
    brand = tmp_path / "brand"
    done = run(["init", "--dir", str(brand), "--tenant", "acme", "--corp-id", "wwacme0001",
                "--agent-id", "1000002"], tmp_path)
    assert done.returncode == 0, done.stderr
    config = brand / "config.toml"
    library = brand / "content_library"
    text = config.read_text("utf-8")
    assert 'secret_env = "ACME_WECOM_SECRET"' in text
    assert 'admin_token_env = "ACME_ADMIN_TOKEN"' in text
    assert "\n# api_base = \"http://127.0.0.1:8900/cgi-bin/\"" in text
    assert not any(value in text for value in SECRETS.values())
    assert sorted(p.relative_to(library).as_posix() for p in library.rglob("*")) == [
        "catalog.toml", "drops", "messages", "messages/welcome_default.toml",
        "profile_fields.toml", "sops", "tags.toml"]

    again = run(["init", "--dir", str(brand), "--tenant", "acme"], tmp_path)
    assert again.returncode == 2 and "not overwriting" in again.stderr
    assert config.read_text("utf-8") == text

    # Without the secrets in the environment the config is refused, naming the key.
    missing = run(["check", "--config", str(config)], tmp_path)
    assert missing.returncode == 2
    assert "tenants.acme.token_env: environment variable ACME_WECOM_TOKEN is not set" in (
        missing.stderr)

    sandbox_port, bot_port = free_port(), free_port()
    config.write_text(text.replace('# api_base = "http://127.0.0.1:8900/cgi-bin/"',
                                   f'api_base = "http://127.0.0.1:{sandbox_port}/cgi-bin/"'),
                      encoding="utf-8")
    env = clean_env(**SECRETS)
    unreachable = run(["check", "--config", str(config)], tmp_path, env)
    assert unreachable.returncode == 1
    assert unreachable.stderr.splitlines() == [
        f"tenants.acme: WeCom at http://127.0.0.1:{sandbox_port}/cgi-bin/ is not reachable "
        "(ClientConnectorError)", "1 problem(s)"]

    sandbox = Server.start(["--config", str(config), "sandbox", "--port", str(sandbox_port)],
                           tmp_path, env, name="sandbox")
    bot = None
    try:
        sandbox.wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/calls")
        checked = run(["check", "--config", str(config)], tmp_path, env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stderr == ""
        assert "ok: content library" in checked.stdout and "1 messages, 0 SOPs" in checked.stdout
        assert f"ok: database ([database] url in {config}: sqlite+aiosqlite:///" in (
            checked.stdout)
        assert "schema not migrated yet" in checked.stdout
        assert "ok: tenants.acme: WeCom at" in checked.stdout
        assert checked.stdout.rstrip().endswith("all checks passed")

        wrong = run(["check", "--config", str(config)], tmp_path,
                    {**env, "ACME_WECOM_SECRET": "not-the-apps-secret"})
        assert wrong.returncode == 1
        assert "refused corp_id or secret (errcode 40001)" in wrong.stderr

        bot = Server.start(["serve", "--config", str(config), "--port", str(bot_port)],
                           tmp_path, env, name="bot")
        health = bot.wait_http(f"http://127.0.0.1:{bot_port}/healthz")
        assert json.loads(health) == {"status": "ok"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{bot_port}/api/v1/acme/guides",
            headers={"Authorization": f"Bearer {SECRETS['ACME_ADMIN_TOKEN']}"})
        with urllib.request.urlopen(request) as resp:
            assert resp.status == 200
        # docker stop / systemd: SIGTERM shuts down cleanly, exit status 0
        assert bot.terminate() == 0, bot.output()
        said = [line.split(" ", 3)[-1] for line in bot.err.read_text("utf-8").splitlines()]
        assert said[-1] == "guidebot.cli: stopped", said
        assert "INFO guidebot.cli: SIGTERM: stopping" in bot.err.read_text("utf-8")
        migrated = run(["check", "--config", str(config)], tmp_path, env)
        assert migrated.returncode == 0 and "schema up to date" in migrated.stdout
    finally:
        if bot is not None:
            bot.stop()
        sandbox_status = sandbox.terminate()
    assert sandbox_status == 0, sandbox.output()
    logs = sandbox.output() + (bot.output() if bot is not None else "")
    for name in ("ACME_WECOM_SECRET", "ACME_ADMIN_TOKEN", "ACME_WECOM_AES_KEY"):
        assert SECRETS[name] not in logs, name


def test_database_errors_are_one_line_naming_the_source(tmp_path: Path) -> None:
    done = run(["init", "--dir", str(tmp_path), "--tenant", "acme", "--corp-id", "wwacme0001",
                "--agent-id", "1000002"], tmp_path)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "config.toml"
    url = "postgresql+asyncpg://guidebot:hunter2pass@127.0.0.1:1/nope"
    text = config.read_text("utf-8")
    start = text.index('\nurl = "') + len('\nurl = "')
    config.write_text(text[:start] + url + text[text.index('"', start):], encoding="utf-8")
    env = clean_env(**SECRETS)
    for args in (["db", "upgrade", "--config", str(config)],
                 ["--config", str(config), "serve", "--port", str(free_port())]):
        failed = run(args, tmp_path, env)
        assert failed.returncode == 1
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1, failed.stderr
        assert lines[0].startswith(
            f"database error ([database] url in {config}: "
            "postgresql+asyncpg://guidebot:***@127.0.0.1:1/nope): "), lines
        assert "hunter2pass" not in failed.stderr

    missing_dir = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    failed = run(["db", "upgrade", "--config", str(config)], tmp_path,
                 {**env, "GUIDEBOT_DATABASE_URL": missing_dir})
    assert failed.returncode == 1
    assert failed.stderr.startswith(
        f"database error (GUIDEBOT_DATABASE_URL: {missing_dir}): DatabaseUnavailable: the "
        f"folder {tmp_path / 'no' / 'such' / 'dir'} of the SQLite file does not exist")
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr

    checked = run(["check", "--config", str(config)], tmp_path, env)
    assert checked.returncode == 1
    assert f"database error ([database] url in {config}: " in checked.stderr


def test_serve_no_migrate_waits_for_the_schema_then_says_what_to_do(tmp_path: Path) -> None:
    """`serve --no-migrate` on a database nobody migrated waits (another process may be
    migrating it), then exits with one line naming the command, not a driver error."""
    done = run(["init", "--dir", str(tmp_path), "--tenant", "acme", "--corp-id", "wwacme0001",
                "--agent-id", "1000002"], tmp_path)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "config.toml"
    failed = run(["--config", str(config), "serve", "--no-migrate", "--schema-wait", "1",
                  "--port", str(free_port())], tmp_path, clean_env(**SECRETS))
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "error: the database schema is never migrated and --no-migrate was given: run "
        "`guidebot db upgrade` (or start one process without --no-migrate)"]


def test_channel_create_refuses_what_the_api_refuses(tmp_path: Path) -> None:
    done = run(["init", "--dir", str(tmp_path), "--tenant", "acme", "--corp-id", "wwacme0001",
                "--agent-id", "1000002"], tmp_path)
    assert done.returncode == 0, done.stderr
    config = str(tmp_path / "config.toml")
    for option, value in (("--guide", "李娜 <script>"), ("--guide", "x" * 65),
                          ("--campaign", "c" * 65)):
        args = ["--config", config, "channel", "create", "--tenant", "acme", "--guide", "lina",
                option, value]
        failed = run(args, tmp_path, clean_env(**SECRETS))
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.startswith(f"error: {option}: "), failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
