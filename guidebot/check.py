"""`guidebot check`: the config, the content library, the database, [server.backup]'s folder
and WeCom, one line each.

Every problem is one line on stderr; anything that is fine is one line on stdout. The exit
status is 1 when there is any problem. WeCom is reached with `gettoken` at each tenant's
api_base (the sandbox answers it too); the token is not kept.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import tempfile
from collections.abc import Callable
from urllib.parse import urlsplit

from guidebot.contacts.welcome import DEFAULT_MESSAGE
from guidebot.content.catalog import load_catalog
from guidebot.content.chat import load_chat_content
from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.content.materials import load_materials
from guidebot.db.engine import Database
from guidebot.db.migrate import current_revisions, is_up_to_date
from guidebot.db.problems import (
    DatabaseUnavailable,
    check_sqlite_folder,
    describe,
    masked_url,
)
from guidebot.db.repo import metrics as repo
from guidebot.errors import ConfigError, WeComCredentialError, WeComError, WeComTransportError
from guidebot.settings import Settings, TenantSettings
from guidebot.wecom.client import error_for
from guidebot.wecom.transport import Transport

WECOM_TIMEOUT_S = 10.0
WECOM_HOST = "qyapi.weixin.qq.com"  # WeCom's own API (a tenant's default api_base)

Report = Callable[[str], None]


def _library(settings: Settings, problem: Report) -> str | None:
    root = settings.content_library
    try:
        library = load_library(root)
        catalog = load_catalog(root)
        materials = load_materials(root)
        chat = load_chat_content(root, set(library.messages))
    except ContentInvalid as exc:
        for item in exc.problems:
            problem(str(item))
        return None
    except ConfigError as exc:
        problem(str(exc))
        return None
    if DEFAULT_MESSAGE not in library.messages:
        problem(f"{root / 'messages' / (DEFAULT_MESSAGE + '.toml')}: missing (the welcome "
                "message sent when a channel code names none)")
        return None
    return (f"content library {root}: {len(library.messages)} messages, {len(library.sops)} "
            f"SOPs, {len(library.drops)} drops, {len(library.tag_groups)} tag groups, "
            f"{len(catalog.products)} products, {len(materials.materials)} materials, "
            f"{len(materials.words.words)} sensitive words, {len(chat.replies)} keyword "
            f"replies, {len(chat.faqs)} FAQ entries, {len(library.group_welcome)} group "
            f"welcome templates, {len(chat.watch)} conversation watch rules")


async def _database(settings: Settings, problem: Report) -> str | None:
    url = settings.database_url
    try:
        check_sqlite_folder(url)
    except DatabaseUnavailable as exc:
        problem(describe(exc, url, settings.database_url_source))
        return None
    db = Database(url)
    try:
        async with db.read() as s:
            await repo.ping(s)
        async with db.engine.connect() as connection:
            current = await current_revisions(connection)
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the problem reported
        problem(describe(exc, url, settings.database_url_source))
        return None
    finally:
        await db.dispose()
    if is_up_to_date(current):
        schema = "schema up to date"
    else:
        schema = ("schema not migrated yet" if not current else "schema older than this code")
        schema += " (`guidebot db upgrade`, or `guidebot serve`, which migrates at start)"
    return f"database ({settings.database_url_source}: {masked_url(url)}): answers; {schema}"


def _public_url(settings: Settings, problem: Report) -> str | None:
    """The address in the links guides open on their phones (task cards, handoff pages, the
    sidebar): a loopback one cannot work once a tenant talks to WeCom itself (a sandbox on
    this machine is fine)."""
    url = settings.server.public_url
    host = (urlsplit(url).hostname or "").lower()
    loopback = host == "localhost" or host.endswith(".localhost") or _is_loopback(host)
    real = [t.id for t in settings.tenants.values()
            if (urlsplit(t.api_base).hostname or "").endswith(WECOM_HOST)]
    if loopback and real:
        problem(f"server.public_url {url} is this machine's own address, but tenant(s) "
                f"{', '.join(real)} talk to WeCom: the links guides open on their phones "
                "(task cards, handoff pages, the sidebar) would not open; set [server] "
                "public_url (or GUIDEBOT_PUBLIC_URL) to guidebot's address behind your proxy")
        return None
    return f"server.public_url {url} (the links guides open)"


def _backup_dir(settings: Settings, problem: Report) -> str | None:
    """[server.backup] `dir` (when configured): there and writable, or creatable (its
    nearest existing parent a writable folder). Nothing is created; a probe file is
    written and deleted at once."""
    backup = settings.server.backup
    if backup is None:
        return None
    folder = backup.dir.absolute()
    where = f"server.backup.dir {folder}"
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem(f"{where} cannot be created: {existing} is not a folder")
        return None
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".guidebot-check-"):
            pass
    except OSError as exc:
        problem(f"{where} is not writable ({existing}: {exc.strerror or exc})")
        return None
    state = "writable" if existing == folder else f"can be created (in {existing})"
    return (f"{where}: {state}; a copy daily at {backup.at:%H:%M} UTC, the newest "
            f"{backup.keep} kept")


def _client_address(settings: Settings) -> tuple[str, bool]:
    """Where a client's address is read from (failed sign-ins and wrong tokens are counted
    per address, and the beacon limit): a note when guidebot is reached at an https address
    (it serves plain HTTP) or listens on this machine only while its public address is
    another, i.e. behind a reverse proxy, without
    `client_ip_header`: every visitor then has the proxy's address, and a few wrong tokens
    from anyone lock out everyone's sign-ins and admin-API calls for a window."""
    server = settings.server
    if server.client_ip_header:
        return f"client addresses read from the {server.client_ip_header} header", False
    url = urlsplit(server.public_url)
    public = (url.hostname or "").lower()
    # guidebot serves plain HTTP: an https address is a proxy's, whatever host it listens on
    proxied = url.scheme == "https" or (
        (_is_loopback(server.host) or server.host == "localhost")
        and not (public == "localhost" or _is_loopback(public)))
    if proxied:
        return (f"guidebot listens on {server.host} and is reached at {server.public_url}, "
                "through a reverse proxy it seems: set [server] client_ip_header to the header it "
                "sets (X-Real-IP, X-Forwarded-For), or every visitor shares the proxy's "
                "address and a few wrong tokens throttle everyone's sign-ins and admin-API "
                "calls"), True
    return "client addresses: the connection's peer", False


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _wecom(tenant: TenantSettings, problem: Report) -> str | None:
    http = Transport(tenant.api_base, WECOM_TIMEOUT_S, error_for)
    where = f"tenants.{tenant.id}: WeCom at {tenant.api_base}"
    try:
        result = await http.call("GET", "gettoken", params={
            "corpid": tenant.corp_id, "corpsecret": tenant.secret})
    except WeComCredentialError as exc:
        problem(f"{where} refused corp_id or secret (errcode {exc.errcode})")
        return None
    except WeComTransportError as exc:
        problem(f"{where} is not reachable ({exc.errmsg})")
        return None
    except WeComError as exc:
        problem(f"{where} answered gettoken with errcode {exc.errcode}")
        return None
    finally:
        await http.close()
    if not result.get("access_token"):
        problem(f"{where} answered gettoken without an access token")
        return None
    return f"{where}: gettoken ok"


async def run_check(settings: Settings) -> int:
    problems: list[str] = []
    # Reading the schema revision makes Alembic log its set-up at INFO: not a finding.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    def problem(line: str) -> None:
        problems.append(line)
        print(line, file=sys.stderr, flush=True)

    def ok(line: str | None) -> None:
        if line is not None:
            print(f"ok: {line}", flush=True)

    ok(f"config {settings.config_path}: {len(settings.tenants)} tenant(s): "
       f"{', '.join(settings.tenants)}")
    ok(_library(settings, problem))
    ok(await _database(settings, problem))
    ok(_public_url(settings, problem))
    ok(_backup_dir(settings, problem))
    address, proxied = _client_address(settings)
    print(f"note: {address}" if proxied else f"ok: {address}", flush=True)
    for tenant in settings.tenants.values():
        ok(await _wecom(tenant, problem))
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0
