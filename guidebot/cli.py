"""The `guidebot` command: init, check, demo, serve, sandbox, db upgrade / backup / restore,
channel create."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import json
import logging
import shlex
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from guidebot.cli_db import add_arguments as add_db_arguments
from guidebot.cli_db import db_command
from guidebot.db.migrate import SchemaNotReady
from guidebot.db.problems import describe, is_database_error
from guidebot.errors import ConfigError, ValidationFailed, WeComError
from guidebot.settings import Settings, load_settings

SCHEMA_WAIT_S = 60.0  # serve --no-migrate: how long another process may take to migrate
# Commands that run until stopped: SIGTERM (docker stop, systemd, Kubernetes) stops them as
# Ctrl-C does, with requests in flight answered and queues flushed, then exit status 0.
LONG_RUNNING = frozenset({"serve", "demo", "sandbox"})

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guidebot", description=__doc__)
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (default: INFO; demo: WARNING)")
    config_help = "config file (default: $GUIDEBOT_CONFIG, ./config.toml)"
    # --config before the command or after it: the command's own copy only sets it when given.
    parser.add_argument("--config", help=config_help)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", help=config_help, default=argparse.SUPPRESS)
        return p

    init = sub.add_parser("init", help="write a commented config.toml and an empty content "
                                       "library for one tenant (never overwrites)")
    init.add_argument("--dir", default=".", help="where to write them (default: .)")
    init.add_argument("--tenant", required=True, help="tenant id: a-z 0-9 _ - (≤ 32)")
    init.add_argument("--corp-id", default="", help="the WeCom corp id (ww…); else fill it in")
    init.add_argument("--agent-id", type=int, default=0, help="the self-built app's AgentId")
    command("check", "validate config and content library, reach the database and WeCom")

    demo = command("demo", "run the end-to-end demo story on SQLite and the sandbox")
    demo.add_argument("--workdir", default="guidebot-demo",
                      help="where the demo database goes (default: ./guidebot-demo)")
    demo.add_argument("--serve", action=argparse.BooleanOptionalAction, default=None,
                      help="after the story, keep its guidebot (console included), sandbox "
                           "and database running until Ctrl-C (default: only when stdin is a "
                           "terminal; otherwise it prints the command that does)")
    demo.add_argument("--port", type=int, default=0, help="guidebot's port (default: a free one)")
    demo.add_argument("--sandbox-port", type=int, default=0,
                      help="the sandbox's port (default: a free one)")
    serve = command("serve", "run the webhook and admin API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-migrate", action="store_true",
                       help="do not apply database migrations at start; wait for another "
                            "process to apply them")
    serve.add_argument("--schema-wait", type=float, default=SCHEMA_WAIT_S, metavar="SECONDS",
                       help="with --no-migrate: how long to wait for the schema "
                            f"(default {SCHEMA_WAIT_S:.0f})")
    sandbox = command("sandbox", "run the local WeCom sandbox for every tenant in the config")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8900)
    add_db_arguments(command("db", "database maintenance: upgrade (migrate), backup and "
                                   "restore (SQLite)"))
    channel = command("channel", "channel codes (「联系我」)")
    channel.add_argument("action", choices=["create"])
    channel.add_argument("--tenant", required=True)
    channel.add_argument("--guide", required=True, action="append",
                         help="the guide's WeCom userid; repeat it for a code of several "
                              "guides (多人活码)")
    channel.add_argument("--backup", action="append", default=[],
                         help="a backup guide (with --daily-limit); repeatable")
    channel.add_argument("--daily-limit", type=int, default=0,
                         help="each guide's adds a day through the code; a guide who reached "
                              "it leaves the code until the next day (QR codes)")
    channel.add_argument("--store")
    channel.add_argument("--campaign", default="")
    channel.add_argument("--tag", action="append", default=[], help="tag name; repeatable")
    channel.add_argument("--welcome", default="", help="message id in content_library/messages")
    channel.add_argument("--link", action="store_true",
                         help="a 获客助手 acquisition link instead of a 「联系我」 QR code")
    channel.add_argument("--no-skip-verify", dest="skip_verify", action="store_false",
                         help="the guide accepts each add (自动通过好友 off)")
    channel.add_argument("--auto-accept-hours", default="", metavar="HH:MM-HH:MM",
                         help="adds are accepted automatically only in this window of the "
                              "tenant's day (e.g. 09:00-21:00; 21:00-09:00 runs past "
                              "midnight); outside it the guide accepts")
    for area in EXTENSIONS:
        _COMMANDS.update(importlib.import_module(area).add_commands(command))
    return parser


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux, macOS): a faster loop for the same code."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = args.log_level or ("WARNING" if args.command == "demo" else "INFO")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level.upper())
    # Their INFO/DEBUG output carries SQL parameters (message text), URLs with tokens or
    # secrets, or a line per scheduler tick: keep them at WARNING whatever --log-level says.
    for noisy in ("aiosqlite", "sqlalchemy", "urllib3", "asyncio", "apscheduler",
                  "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "init":  # no config exists yet
        return _init(args)
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            work = _COMMANDS[args.command](settings, args)
            if args.command in LONG_RUNNING:
                work = _until_sigterm(work)
            return runner.run(work)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except (ValidationFailed, SchemaNotReady) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            # serve, demo and sandbox: one line, not a traceback
            print(f"error: a port is already in use ({exc.strerror}): stop what holds it, or "
                  "pass another --port (demo: --port and --sandbox-port)", file=sys.stderr)
            return 2
        if settings is None or not is_database_error(exc):
            raise
        # One line naming where the URL is set (password masked), not a driver traceback.
        print(describe(exc, settings.database_url, settings.database_url_source),
              file=sys.stderr)
        return 1


async def _until_sigterm(work: Coroutine[Any, Any, int]) -> int:
    """`work`, cancelled on SIGTERM: its own clean-up runs (the server's shutdown) and the
    command exits 0, instead of the process dying mid-write as SIGTERM's default does."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # called from a coroutine
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        if not terminated:
            terminated = True
            log.info("SIGTERM: stopping")
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError):  # no such signal handling here (Windows)
        return await work
    try:
        return await work
    except asyncio.CancelledError:
        if not terminated:
            raise
        task.uncancel()
        log.info("stopped")
        return 0
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from guidebot import scaffold

    try:
        planned = scaffold.plan(Path(args.dir), tenant=args.tenant, corp_id=args.corp_id,
                                agent_id=args.agent_id)
        written = scaffold.write(planned)
    except ValidationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    env = args.tenant.upper().replace("-", "_")
    print(f"""
Next: fill in corp_id and agent_id in {planned.folder / 'config.toml'}, export
{env}_WECOM_TOKEN, {env}_WECOM_AES_KEY, {env}_WECOM_SECRET and {env}_ADMIN_TOKEN, then run
  guidebot --config {planned.folder / 'config.toml'} check
  guidebot --config {planned.folder / 'config.toml'} serve""")
    return 0


async def _check(settings: Settings, args: argparse.Namespace) -> int:
    from guidebot.check import run_check

    return await run_check(settings)


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from guidebot.demo import run_demo

    again = ["guidebot", *(["--config", args.config] if args.config else []), "demo",
             "--workdir", args.workdir, "--serve"]
    for flag, value in (("--port", args.port), ("--sandbox-port", args.sandbox_port)):
        again += [flag, str(value)] if value else []
    serve = sys.stdin.isatty() if args.serve is None else args.serve
    return await run_demo(settings, workdir=args.workdir, serve=serve, port=args.port,
                          sandbox_port=args.sandbox_port, again=shlex.join(again))


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from guidebot.server import serve

    if not args.no_migrate:
        from guidebot.db.migrate import upgrade_async

        await upgrade_async(settings.database_url)
    else:  # another process (or `guidebot db upgrade`) migrates: wait for it, a while
        from guidebot.db.migrate import wait_for_schema

        await wait_for_schema(settings.database_url, timeout_s=args.schema_wait)
    await serve(settings, host=args.host or settings.server.host,
                port=args.port or settings.server.port)
    return 0


async def _sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from guidebot.sandbox import serve

    print(f"WeCom sandbox on http://{args.host}:{args.port}/cgi-bin/ "
          f"for tenants: {', '.join(settings.tenants)}", flush=True)
    await serve(settings, args.host, args.port)
    return 0


async def _channel(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from guidebot.db.engine import Database
    from guidebot.services import build_services
    from guidebot.web.api.shapes import ChannelCreate

    if args.tenant not in settings.tenants:
        known = ", ".join(settings.tenants)
        raise ValidationFailed(f"unknown tenant {args.tenant!r}; known: {known}")
    try:  # the admin API's own rules (WeCom userid charset, lengths)
        several = len(args.guide) > 1
        wanted = ChannelCreate(guide=None if several else args.guide[0],
                               guides=args.guide if several else [], store=args.store,
                               campaign=args.campaign, tags=args.tag,
                               welcome_message=args.welcome, kind="link" if args.link else "qr",
                               backup_guides=args.backup, daily_limit=args.daily_limit,
                               skip_verify=args.skip_verify,
                               auto_accept_hours=args.auto_accept_hours)
    except ValidationError as exc:
        first = exc.errors()[0]
        option = {"welcome_message": "welcome", "tags": "tag", "guides": "guide",
                  "backup_guides": "backup", "daily_limit": "daily-limit",
                  "auto_accept_hours": "auto-accept-hours"}.get(
            str(first["loc"][0]), str(first["loc"][0]))
        raise ValidationFailed(f"--{option}: {first['msg']}") from None
    db = Database(settings.database_url)
    services = build_services(settings, db)
    try:
        await services.record_tenants()
        code = await services.channels.create(
            args.tenant, guide=wanted.guide or "", guides=wanted.guides, store=wanted.store,
            campaign=wanted.campaign, tags=wanted.tags,
            welcome_message=wanted.welcome_message, kind=wanted.kind,
            backup_guides=wanted.backup_guides, daily_limit=wanted.daily_limit,
            skip_verify=wanted.skip_verify, auto_accept_hours=wanted.auto_accept_hours)
    except WeComError as exc:
        print(f"error: WeCom refused ({type(exc).__name__}, errcode {exc.errcode})",
              file=sys.stderr)
        return 1
    finally:
        await services.close()
        await db.dispose()
    from guidebot.contacts.views import channel_json

    print(json.dumps(channel_json(code), ensure_ascii=False, indent=2))
    return 0


Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]
_COMMANDS: dict[str, Command] = {"demo": _demo, "serve": _serve, "sandbox": _sandbox,
                                 "db": db_command, "channel": _channel, "check": _check}
# Areas that add their own subcommands: each module has
# add_commands(command: Callable[[name, help], ArgumentParser]) -> dict[name, Command].
EXTENSIONS: tuple[str, ...] = ("guidebot.cli_commerce", "guidebot.cli_sop",
                               "guidebot.usage.cli", "guidebot.cli_stats",
                               "guidebot.cli_customers",
                               "guidebot.materials.cli", "guidebot.cli_retention")

if __name__ == "__main__":
    raise SystemExit(main())
