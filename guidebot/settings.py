"""config.toml + environment → frozen settings, with errors naming file, key and problem."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from guidebot.errors import ConfigError

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./guidebot.db"
PLACEHOLDER_SECRETS = {"changeme", "change-me", "change_me", "secret", "xxx", "todo", "",
                       "password", "placeholder"}
ATTRIBUTION_RULES = ("share_link", "exclusive_guide", "store")
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
_TOKEN = re.compile(r"^[A-Za-z0-9]{1,32}$")
_RATE = re.compile(r"^(0|1)(\.\d{1,6})?$")
_QUOTA = re.compile(r"^\d+/(day|week|month)$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_KIND_NAMES = {int: "an integer", str: "a string", float: "a number", dict: "a table",
               list: "an array", bool: "true or false"}


MAX_BACKUPS_KEPT = 365


@dataclass(frozen=True)
class BackupSettings:
    """Scheduled copies of the SQLite database made by `guidebot serve` (guidebot/backups.py):
    one a day at `at` (UTC: the server has no time zone of its own, tenants have theirs) into
    `dir`, the newest `keep` of them kept."""

    dir: Path
    at: time
    keep: int = 7


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    operator_token: str = ""  # the SaaS operator's pages (/operator/…); empty = off
    metrics_token: str = ""  # GET /metrics asks `Authorization: Bearer` it; empty = open
    backup: BackupSettings | None = None  # [server.backup]; None: no scheduled backups
    # Failed sign-ins (console and operator) per client address before it is answered 429
    # until `signin_window_minutes` after its first failure (guidebot/web/signin_throttle.py).
    signin_failures: int = 10
    signin_window_minutes: int = 15
    client_ip_header: str = ""  # the reverse proxy's client address header; "": the peer
    beacon_per_minute: int = 0  # visit beacons per client address a minute; 0: no limit (the
    # default: behind a proxy without client_ip_header every visitor shares one address)


@dataclass(frozen=True)
class LlmSettings:
    base_url: str = ""
    model: str = ""
    api_key: str = ""
    timeout_s: float = 20.0


WECOM_APP_MSG_PER_MIN = 30  # message/send per app per member per minute (FACTS §3.7)


@dataclass(frozen=True)
class QuotaSettings:
    mass_msg_per_customer: str = "1/day"
    app_msg_per_guide_per_min: int = 30
    api_calls_per_min: int = 10_000


@dataclass(frozen=True)
class CommissionSettings:
    precedence: tuple[str, ...] = ATTRIBUTION_RULES
    share_link_window_days: int = 7
    protection_days: int = 30
    binding_validity_days: int = 0
    default_rate: str = "0.03"
    rates: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KfSettings:
    """微信客服: the accounts (open_kfid "wk…") whose customers guidebot answers."""

    open_kfids: tuple[str, ...] = ()


MAX_CARD_OPENED_WINDOW_MIN = 1440  # a day
MAX_HANDOFF_REPLY_MIN = 2880  # the session's 48 h life
# WeCom retries an unanswered callback within seconds, three times (FACTS §1.5); two days is
# far past any retry, so a deleted item cannot let a retry in twice.
MIN_INBOX_DAYS = 2
MIN_AUDIT_DAYS = 30
MIN_OUTBOX_DAYS = 2
MAX_RETENTION_DAYS = 36_500  # a bound, so a typo cannot overflow the date arithmetic
_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")  # a time of day, e.g. "09:00"


WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_WEEKLY = re.compile(r"([A-Za-z]{3})\s+(\S+)")  # "MON 09:00"


@dataclass(frozen=True)
class WeeklyAt:
    """A time in the week: `weekday` 0 (Monday) to 6 (Sunday), at `at` (tenant's time)."""

    weekday: int
    at: time


@dataclass(frozen=True)
class AlertSettings:
    """Notices to a guide about their customers: `customer_deleted`, an app message when a
    customer deletes the guide (删人提醒); `card_opened`, an app message when one of the
    guide's customers opens a card the guide sent (互动雷达), at most one per guide and
    customer every `card_opened_window_minutes`; `morning_digest`, the time of day (the
    tenant's time zone) each guide is sent their 导购早报 (None: off);
    `handoff_reply_minutes`, an app message to the servicer when a customer of a handed-off
    微信客服 session has waited that long for a reply (超时未回复提醒; 0: off);
    `watch_notify`, the HQ members (userids) sent an app message for each 微信客服 message
    an `alert` rule of chat/watch_words.toml flags (会话质检; empty: nobody);
    `guide_deleted_notify`, the members (userids: store managers, HQ) sent an app message
    each time a guide deletes a customer (员工删人提醒; empty: nobody); `manager_weekly`, the
    weekday and time of day (the tenant's time zone) each store manager is sent their
    store's past week (店长周报; None: off)."""

    customer_deleted: bool = True
    card_opened: bool = True
    card_opened_window_minutes: int = 30
    morning_digest: time | None = None
    handoff_reply_minutes: int = 10
    watch_notify: tuple[str, ...] = ()
    guide_deleted_notify: tuple[str, ...] = ()
    manager_weekly: WeeklyAt | None = None


@dataclass(frozen=True)
class RetentionSettings:
    """How long customers' data is kept (a daily job, guidebot/retention.py): handled inbox
    items (each a callback's decrypted payload) older than `inbox_days` are deleted (0: kept
    forever; at least MIN_INBOX_DAYS otherwise, so no retry of a callback can arrive after
    its item is gone and be handled twice); the text of 微信客服 messages older than
    `kf_text_days` is blanked, the rows kept for the figures (0: kept forever); 操作日志
    entries older than `audit_days` are deleted (0: kept forever; at least MIN_AUDIT_DAYS
    otherwise, so a month of who-did-what is always there to look back on); the texts of
    outbox calls that finished more than `outbox_days` ago are blanked (0: kept forever; at
    least MIN_OUTBOX_DAYS otherwise, like the inbox)."""

    inbox_days: int = 30
    kf_text_days: int = 0
    audit_days: int = 0
    outbox_days: int = 0


@dataclass(frozen=True)
class AutoTagSettings:
    """自动打标签: whether the rules of content_library/auto_tags.toml tag this tenant's
    customers (the library is shared by every tenant of the process)."""

    enabled: bool = True


@dataclass(frozen=True)
class ConsoleSettings:
    """HQ members who sign in to the console through WeCom (their userids): `members` may
    change things, `viewers` only look."""

    members: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()

    def role(self, userid: str) -> str | None:
        """"member", "viewer", or None for a userid not listed."""
        if userid in self.members:
            return "member"
        return "viewer" if userid in self.viewers else None


GRADES = ("S", "A", "B", "C")


@dataclass(frozen=True)
class MaterialSettings:
    """The material centre: points per grade for each use by another guide, and the webhook
    that receives every points entry (HMAC-signed with webhook_secret)."""

    points: Mapping[str, int] = field(
        default_factory=lambda: {"S": 10, "A": 5, "B": 2, "C": 1})
    webhook_url: str = ""
    webhook_secret: str = ""


@dataclass(frozen=True)
class TenantSettings:
    id: str
    corp_id: str
    agent_id: int
    token: str
    encoding_aes_key: str
    secret: str
    admin_token: str
    api_base: str = DEFAULT_API_BASE
    order_secret: str = ""
    miniprogram_appid: str = ""
    timezone: str = "Asia/Shanghai"
    quotas: QuotaSettings = QuotaSettings()
    commission: CommissionSettings = CommissionSettings()
    kf: KfSettings = KfSettings()
    materials: MaterialSettings = MaterialSettings()
    alerts: AlertSettings = AlertSettings()
    auto_tags: AutoTagSettings = AutoTagSettings()
    retention: RetentionSettings = RetentionSettings()
    console: ConsoleSettings = ConsoleSettings()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def day_bounds(self, day_from: date, day_to: date) -> tuple[datetime, datetime]:
        """[start, end) of the tenant's days day_from..day_to (inclusive), in UTC."""
        start = datetime.combine(day_from, time(0), tzinfo=self.tz)
        end = datetime.combine(day_to + timedelta(days=1), time(0), tzinfo=self.tz)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Settings:
    config_path: Path
    content_library: Path
    server: ServerSettings
    database_url: str
    llm: LlmSettings
    tenants: Mapping[str, TenantSettings]
    # Where database_url came from, for error messages: "GUIDEBOT_DATABASE_URL",
    # "[database] url in FILE" or "the default".
    database_url_source: str = "the default"
    # Files guidebot keeps (pictures guides contribute): `data_dir`, default "data" beside
    # the config file.
    data_dir: Path = Path("data")

    def tenant(self, tenant_id: str) -> TenantSettings:
        return self.tenants[tenant_id]


class _Reader:
    """Reads typed values out of one TOML table, naming the dotted key in every error."""

    def __init__(self, file: str, prefix: str, table: Mapping[str, Any], known: set[str]) -> None:
        self.file, self.prefix, self.table = file, prefix, table
        for key in table:
            if key not in known:
                raise ConfigError(file, self.key(key), "unknown key")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), problem)

    def get(self, name: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        if name not in self.table:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, f"must be {_KIND_NAMES[kind]}, got {type(value).__name__}")
        return value

    def secret(self, name: str, *, required: bool) -> str:
        """A secret given inline as `name` or through the environment variable `name_env`."""
        env_key = f"{name}_env"
        if name in self.table and env_key in self.table:
            raise self.fail(name, f"give either {name} or {env_key}, not both")
        if env_key in self.table:
            var = self.get(env_key, str)
            value = os.environ.get(var)
            if value is None:
                raise self.fail(env_key, f"environment variable {var} is not set")
            if value.strip().lower() in PLACEHOLDER_SECRETS and (required or value.strip()):
                what = "is empty" if not value.strip() else "holds a placeholder"
                raise self.fail(env_key, f"environment variable {var} {what}; "
                                         "set the real secret")
            return value
        value = self.get(name, str, "")
        if required and value.strip().lower() in PLACEHOLDER_SECRETS:
            raise self.fail(name, "is required (set it or use " + env_key + ")")
        if value.strip().lower() in PLACEHOLDER_SECRETS and value.strip():
            raise self.fail(name, "is a placeholder; set the real secret or leave it out")
        return str(value)


def default_config_path() -> Path:
    return Path(os.environ.get("GUIDEBOT_CONFIG", "config.toml"))


def load_settings(path: str | Path | None = None) -> Settings:
    """Load and validate the configuration; raise ConfigError on any problem."""
    config_path = Path(path) if path is not None else default_config_path()
    file = str(config_path)
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(file, "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from None
    top = _Reader(file, "", raw, {"server", "database", "llm", "tenants", "content_library",
                                  "data_dir"})
    base = config_path.resolve().parent
    library = base / top.get("content_library", str, "content_library")
    if not library.is_dir():
        raise top.fail("content_library", f"directory {library} does not exist")
    tenants_raw = top.get("tenants", dict, {})
    if not tenants_raw:
        raise top.fail("tenants", "at least one tenant is required")
    tenants = {tid: _tenant(file, tid, t) for tid, t in tenants_raw.items()}
    database = top.get("database", dict, {})
    database_url = _database_url(file, database)
    return Settings(
        config_path=config_path.resolve(),
        content_library=library,
        server=_server(file, top.get("server", dict, {}), base, database_url),
        database_url=database_url,
        llm=_llm(file, top.get("llm", dict, {})),
        tenants=tenants,
        database_url_source=database_url_source(file, database),
        data_dir=base / top.get("data_dir", str, "data"),
    )


def database_url_source(file: str, database: Mapping[str, Any]) -> str:
    """Where the database URL is set, as an operator would look for it."""
    if os.environ.get("GUIDEBOT_DATABASE_URL"):
        return "GUIDEBOT_DATABASE_URL"
    return f"[database] url in {file}" if "url" in database else "the default"


def _server(file: str, table: Mapping[str, Any], base: Path,
            database_url: str) -> ServerSettings:
    r = _Reader(file, "server", table,
                {"host", "port", "public_url", "operator_token", "operator_token_env", "backup",
                 "signin_failures", "signin_window_minutes", "client_ip_header",
                 "metrics_token", "metrics_token_env", "beacon_per_minute"})
    host = os.environ.get("GUIDEBOT_SERVER_HOST") or r.get("host", str, "127.0.0.1")
    port_env = os.environ.get("GUIDEBOT_SERVER_PORT")
    port = int(port_env) if port_env else r.get("port", int, 8080)
    if not 0 <= port <= 65535:
        raise r.fail("port", "must be between 0 and 65535")
    public_url = os.environ.get("GUIDEBOT_PUBLIC_URL") or r.get(
        "public_url", str, f"http://{host}:{port}"
    )
    operator_token = r.secret("operator_token", required=False)
    if operator_token and operator_token.strip().lower() in PLACEHOLDER_SECRETS:
        raise r.fail("operator_token", "is a placeholder: set a real token, or leave it out")
    # once given, never empty: an empty token would leave /metrics open (fail closed)
    metrics_token = r.secret("metrics_token", required=bool(
        {"metrics_token", "metrics_token_env"} & set(table)))
    backup = r.get("backup", dict)
    limits = {name: r.get(name, int, getattr(ServerSettings, name))
              for name in ("signin_failures", "signin_window_minutes")}
    for name, value in limits.items():
        if value < 1:
            raise r.fail(name, f"must be a positive integer, got {value}")
    beacons = r.get("beacon_per_minute", int, ServerSettings.beacon_per_minute)
    if beacons < 0:
        raise r.fail("beacon_per_minute", f"must be 0 (no limit) or more, got {beacons}")
    header = r.get("client_ip_header", str, "").strip()
    if header and not _HEADER_NAME.fullmatch(header):
        raise r.fail("client_ip_header", f'must be a header name such as "X-Real-IP" or '
                                         f'"X-Forwarded-For", got {header!r}')
    return ServerSettings(host=host, port=port, public_url=public_url.rstrip("/"),
                          operator_token=operator_token, metrics_token=metrics_token,
                          client_ip_header=header, **limits,
                          beacon_per_minute=beacons,
                          backup=None if backup is None else _backup(file, backup, base,
                                                                     database_url))


def _backup(file: str, table: Mapping[str, Any], base: Path,
            database_url: str) -> BackupSettings:
    from guidebot.db.backup import postgres_advice, sqlite_file

    r = _Reader(file, "server.backup", table, {"dir", "keep", "at"})
    database = sqlite_file(database_url)
    if database is None:
        raise ConfigError(file, "server.backup", "an in-memory SQLite database has no file to "
                          "copy" if database_url.startswith("sqlite")
                          else postgres_advice(database_url, "schedule"))
    folder = (base / r.get("dir", str, required=True)).resolve()
    if folder == database.resolve():
        raise r.fail("dir", f"{folder} is the database file itself: name a directory for "
                            "the copies")
    if folder.exists() and not folder.is_dir():
        raise r.fail("dir", f"{folder} is not a directory")
    keep = r.get("keep", int, BackupSettings.keep)
    if not 1 <= keep <= MAX_BACKUPS_KEPT:
        raise r.fail("keep", f"must be from 1 to {MAX_BACKUPS_KEPT} (daily copies), got {keep}")
    at = r.get("at", str, required=True).strip()
    found = _HH_MM.fullmatch(at)
    if found is None:
        raise r.fail("at", f'must be a time of day "HH:MM" (00:00–23:59, UTC), got {at!r}')
    return BackupSettings(dir=folder, at=time(int(found[1]), int(found[2])), keep=keep)


def _database_url(file: str, table: Mapping[str, Any]) -> str:
    r = _Reader(file, "database", table, {"url"})
    url = os.environ.get("GUIDEBOT_DATABASE_URL") or r.get("url", str, DEFAULT_DATABASE_URL)
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise r.fail("url", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return str(url)


def _llm(file: str, table: Mapping[str, Any]) -> LlmSettings:
    r = _Reader(file, "llm", table, {"base_url", "model", "api_key", "api_key_env", "timeout_s"})
    base_url = r.get("base_url", str, "")
    return LlmSettings(
        base_url=base_url,
        model=r.get("model", str, ""),
        api_key=r.secret("api_key", required=False) if base_url else "",
        timeout_s=r.get("timeout_s", float, 20.0),
    )


_TENANT_KEYS = {
    "corp_id", "agent_id", "token", "token_env", "encoding_aes_key", "encoding_aes_key_env",
    "secret", "secret_env", "api_base", "admin_token", "admin_token_env", "order_secret",
    "order_secret_env", "miniprogram_appid", "timezone", "quotas", "commission",
    "kf", "materials", "alerts", "auto_tags", "retention", "console",
}


def _tenant(file: str, tenant_id: str, table: Any) -> TenantSettings:
    prefix = f"tenants.{tenant_id}"
    if not isinstance(table, dict):
        raise ConfigError(file, prefix, "must be a table")
    if not _TENANT_ID.fullmatch(tenant_id):
        raise ConfigError(file, prefix, "tenant id must be 1-32 of a-z 0-9 _ - (lower case)")
    r = _Reader(file, prefix, table, _TENANT_KEYS)
    token = r.secret("token", required=True)
    if not _TOKEN.fullmatch(token):
        raise r.fail("token", "must be 1-32 letters or digits (WeCom's rule)")
    aes_key = r.secret("encoding_aes_key", required=True)
    if not _AES_KEY.fullmatch(aes_key):
        raise r.fail("encoding_aes_key", "must be exactly 43 letters or digits (WeCom's rule)")
    timezone = r.get("timezone", str, "Asia/Shanghai")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail("timezone", f"unknown time zone {timezone!r}") from None
    api_base = r.get("api_base", str, DEFAULT_API_BASE)
    if not api_base.startswith(("http://", "https://")):
        raise r.fail("api_base", "must be an http(s) URL")
    corp_id = r.get("corp_id", str, required=True)
    if not corp_id.strip():
        raise r.fail("corp_id", "is required (the corp id, ww…, from the WeCom admin console)")
    agent_id = r.get("agent_id", int, required=True)
    if agent_id < 1:
        raise r.fail("agent_id", "must be the self-built app's AgentId (a positive integer)")
    return TenantSettings(
        id=tenant_id,
        corp_id=corp_id,
        agent_id=agent_id,
        token=token,
        encoding_aes_key=aes_key,
        secret=r.secret("secret", required=True),
        admin_token=r.secret("admin_token", required=True),
        api_base=api_base.rstrip("/") + "/",
        order_secret=r.secret("order_secret", required=False),
        miniprogram_appid=r.get("miniprogram_appid", str, ""),
        timezone=timezone,
        quotas=_quotas(file, prefix, r.get("quotas", dict, {})),
        commission=_commission(file, prefix, r.get("commission", dict, {})),
        kf=_kf(file, prefix, r.get("kf", dict, {})),
        materials=_materials(file, prefix, r.get("materials", dict, {})),
        alerts=_alerts(file, prefix, r.get("alerts", dict, {})),
        auto_tags=_auto_tags(file, prefix, r.get("auto_tags", dict, {})),
        retention=_retention(file, prefix, r.get("retention", dict, {})),
        console=_console(file, prefix, r.get("console", dict, {})),
    )


def _quotas(file: str, prefix: str, table: Mapping[str, Any]) -> QuotaSettings:
    r = _Reader(file, f"{prefix}.quotas", table,
                {"mass_msg_per_customer", "app_msg_per_guide_per_min", "api_calls_per_min"})
    mass = r.get("mass_msg_per_customer", str, "1/day")
    if not _QUOTA.fullmatch(mass):
        raise r.fail("mass_msg_per_customer", 'must look like "1/day" or "4/month"')
    per_min = r.get("app_msg_per_guide_per_min", int, 30)
    calls = r.get("api_calls_per_min", int, 10_000)
    for name, value in (("app_msg_per_guide_per_min", per_min), ("api_calls_per_min", calls)):
        if value < 1:
            raise r.fail(name, "must be at least 1")
    if per_min > WECOM_APP_MSG_PER_MIN:  # FACTS §3.7: the excess is silently dropped
        raise r.fail("app_msg_per_guide_per_min",
                     f"must be at most {WECOM_APP_MSG_PER_MIN}: WeCom silently drops a "
                     f"member's app messages past {WECOM_APP_MSG_PER_MIN} a minute")
    return QuotaSettings(mass, per_min, calls)


def _materials(file: str, prefix: str, table: Mapping[str, Any]) -> MaterialSettings:
    r = _Reader(file, f"{prefix}.materials", table,
                {"points", "webhook_url", "webhook_secret", "webhook_secret_env"})
    points = dict(MaterialSettings().points)
    given = r.get("points", dict, {})
    for grade, value in given.items():
        if grade not in GRADES:
            raise r.fail("points", f"unknown grade {grade!r}; grades are S, A, B, C")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000:
            raise r.fail("points", f"{grade} must be an integer from 0 to 10000")
        points[grade] = value
    url = r.get("webhook_url", str, "")
    if url and not url.startswith(("http://", "https://")):
        raise r.fail("webhook_url", "must be an http(s) URL")
    secret = r.secret("webhook_secret", required=False)
    if url and not secret:
        raise r.fail("webhook_secret", "is required with webhook_url (the HMAC key)")
    return MaterialSettings(points=points, webhook_url=url, webhook_secret=secret)


def _alerts(file: str, prefix: str, table: Mapping[str, Any]) -> AlertSettings:
    r = _Reader(file, f"{prefix}.alerts", table,
                {"customer_deleted", "card_opened", "card_opened_window_minutes",
                 "morning_digest", "handoff_reply_minutes", "watch_notify",
                 "guide_deleted_notify", "manager_weekly"})
    window = r.get("card_opened_window_minutes", int, 30)
    if not 1 <= window <= MAX_CARD_OPENED_WINDOW_MIN:
        raise r.fail("card_opened_window_minutes",
                     f"must be from 1 to {MAX_CARD_OPENED_WINDOW_MIN} (minutes), got {window}")
    digest = r.get("morning_digest", str, "").strip()
    found = _HH_MM.fullmatch(digest)
    if digest and found is None:
        raise r.fail("morning_digest",
                     f'must be a time of day "HH:MM" (00:00–23:59) or "" (off), got {digest!r}')
    reply = r.get("handoff_reply_minutes", int, 10)
    if not 0 <= reply <= MAX_HANDOFF_REPLY_MIN:
        raise r.fail("handoff_reply_minutes",
                     f"must be from 0 (off) to {MAX_HANDOFF_REPLY_MIN} (minutes), got {reply}")
    notify = r.get("watch_notify", list, [])
    if not all(isinstance(u, str) and 0 < len(u) <= 64 for u in notify):
        raise r.fail("watch_notify", "must be a list of member userids (1-64 characters)")
    deleted = r.get("guide_deleted_notify", list, [])
    if not all(isinstance(u, str) and 0 < len(u) <= 64 for u in deleted):
        raise r.fail("guide_deleted_notify",
                     "must be a list of member userids (1-64 characters)")
    return AlertSettings(customer_deleted=r.get("customer_deleted", bool, True),
                         card_opened=r.get("card_opened", bool, True),
                         card_opened_window_minutes=window,
                         morning_digest=time(int(found[1]), int(found[2])) if found else None,
                         handoff_reply_minutes=reply,
                         watch_notify=tuple(dict.fromkeys(notify)),
                         guide_deleted_notify=tuple(dict.fromkeys(deleted)),
                         manager_weekly=_weekly(r, "manager_weekly"))


def _weekly(r: _Reader, key: str) -> WeeklyAt | None:
    """`"MON 09:00"` (a weekday MON–SUN and a time of day "HH:MM") or "" (off)."""
    raw = r.get(key, str, "").strip()
    if not raw:
        return None
    found = _WEEKLY.fullmatch(raw)
    clock = _HH_MM.fullmatch(found[2]) if found else None
    if found is None or clock is None or found[1].upper() not in WEEKDAYS:
        raise r.fail(key, f'must be a weekday and a time of day, "MON 09:00" (MON TUE WED '
                          f'THU FRI SAT SUN, 00:00–23:59), or "" (off), got {raw!r}')
    return WeeklyAt(WEEKDAYS.index(found[1].upper()), time(int(clock[1]), int(clock[2])))


def _retention(file: str, prefix: str, table: Mapping[str, Any]) -> RetentionSettings:
    r = _Reader(file, f"{prefix}.retention", table,
                {"inbox_days", "kf_text_days", "audit_days", "outbox_days"})
    inbox_days = r.get("inbox_days", int, RetentionSettings.inbox_days)
    if inbox_days != 0 and not MIN_INBOX_DAYS <= inbox_days <= MAX_RETENTION_DAYS:
        raise r.fail("inbox_days",
                     f"must be 0 (keep forever) or from {MIN_INBOX_DAYS} to "
                     f"{MAX_RETENTION_DAYS} (days), got {inbox_days}: the inbox recognises a "
                     f"callback WeCom sends again by its stored item, so an item must outlive "
                     f"every retry")
    kf_text_days = r.get("kf_text_days", int, RetentionSettings.kf_text_days)
    if not 0 <= kf_text_days <= MAX_RETENTION_DAYS:
        raise r.fail("kf_text_days",
                     f"must be 0 (keep forever) or from 1 to {MAX_RETENTION_DAYS} (days), "
                     f"got {kf_text_days}")
    audit_days = r.get("audit_days", int, RetentionSettings.audit_days)
    if audit_days != 0 and not MIN_AUDIT_DAYS <= audit_days <= MAX_RETENTION_DAYS:
        raise r.fail("audit_days",
                     f"must be 0 (keep forever) or from {MIN_AUDIT_DAYS} to "
                     f"{MAX_RETENTION_DAYS} (days), got {audit_days}")
    outbox_days = r.get("outbox_days", int, RetentionSettings.outbox_days)
    if outbox_days != 0 and not MIN_OUTBOX_DAYS <= outbox_days <= MAX_RETENTION_DAYS:
        raise r.fail("outbox_days",
                     f"must be 0 (keep forever) or from {MIN_OUTBOX_DAYS} to "
                     f"{MAX_RETENTION_DAYS} (days), got {outbox_days}")
    return RetentionSettings(inbox_days=inbox_days, kf_text_days=kf_text_days,
                             audit_days=audit_days, outbox_days=outbox_days)


def _kf(file: str, prefix: str, table: Mapping[str, Any]) -> KfSettings:
    r = _Reader(file, f"{prefix}.kf", table, {"open_kfids"})
    ids = r.get("open_kfids", list, [])
    for value in ids:
        # FACTS-next §A.7: open_kfid is used as a JSON string; WeCom documents no exact format,
        # so only a non-empty string of at most 64 characters is required here.
        if not isinstance(value, str) or not value or len(value) > 64:
            raise r.fail("open_kfids", "must be a list of open_kfid strings (1-64 characters)")
    return KfSettings(open_kfids=tuple(dict.fromkeys(ids)))


def _commission(file: str, prefix: str, table: Mapping[str, Any]) -> CommissionSettings:
    r = _Reader(file, f"{prefix}.commission", table, {
        "precedence", "share_link_window_days", "protection_days", "binding_validity_days",
        "default_rate", "rates",
    })
    precedence = tuple(r.get("precedence", list, list(ATTRIBUTION_RULES)))
    for rule in precedence:
        if rule not in ATTRIBUTION_RULES:
            known = ", ".join(ATTRIBUTION_RULES)
            raise r.fail("precedence", f"unknown rule {rule!r}; known: {known}")
    days = {}
    for name, default in (("share_link_window_days", 7), ("protection_days", 30),
                          ("binding_validity_days", 0)):
        days[name] = r.get(name, int, default)
        if days[name] < 0:
            raise r.fail(name, "must not be negative")
    default_rate = r.get("default_rate", str, "0.03")
    if not _RATE.fullmatch(default_rate):
        raise r.fail("default_rate", 'must be a decimal string between 0 and 1, like "0.03"')
    rates = r.get("rates", dict, {})
    for key, rate in rates.items():
        if not key.startswith(("category:", "sku:")):
            raise r.fail(f"rates.{key}", 'keys must start with "category:" or "sku:"')
        if not isinstance(rate, str) or not _RATE.fullmatch(rate):
            raise r.fail(f"rates.{key}", 'must be a decimal string like "0.05"')
    return CommissionSettings(precedence=precedence, default_rate=default_rate, rates=rates,
                              **days)


def _console(file: str, prefix: str, table: Mapping[str, Any]) -> ConsoleSettings:
    r = _Reader(file, f"{prefix}.console", table, {"members", "viewers"})
    lists = {}
    for name in ("members", "viewers"):
        given = r.get(name, list, [])
        if not all(isinstance(u, str) and 0 < len(u) <= 64 for u in given):
            raise r.fail(name, "must be a list of member userids (1-64 characters)")
        lists[name] = tuple(dict.fromkeys(given))
    both = set(lists["members"]) & set(lists["viewers"])
    if both:
        raise r.fail("viewers", f"{sorted(both)[0]!r} is listed in members too")
    return ConsoleSettings(members=lists["members"], viewers=lists["viewers"])


def _auto_tags(file: str, prefix: str, table: Mapping[str, Any]) -> AutoTagSettings:
    r = _Reader(file, f"{prefix}.auto_tags", table, {"enabled"})
    return AutoTagSettings(enabled=r.get("enabled", bool, True))
