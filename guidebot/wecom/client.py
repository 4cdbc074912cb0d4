"""Async WeCom API client over wechatpy: typed errors, one token refresh, bounded backoff."""

from __future__ import annotations

import asyncio
import functools
import logging
import mimetypes
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

from guidebot.errors import (
    WeComApiError,
    WeComCredentialError,
    WeComError,
    WeComRateLimited,
    WeComTokenError,
    WeComTransportError,
    WelcomeWindowClosed,
)
from guidebot.settings import TenantSettings
from guidebot.wecom.ratelimit import RateLimiter, shared_limiter
from guidebot.wecom.tokens import InMemoryTokenStore, TokenKeeper, TokenStore

__all__ = [
    "BackoffConfig",
    "InMemoryTokenStore",
    "RateLimiter",
    "TokenStore",
    "WeComClient",
    "error_for",
    "shared_executor",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_WORKERS = 16
TOKEN_CODES = frozenset({40014, 42001})
RATE_LIMIT_CODES = frozenset({-1, 45009, 45033})
# 40001 secret, 40013 corpid, 40056 agentid, 40091 secret revoked, 41002/41004 missing ones.
CREDENTIAL_CODES = frozenset({40001, 40013, 40056, 40091, 41002, 41004})
WELCOME_WINDOW_CLOSED = 41051


@dataclass(frozen=True)
class BackoffConfig:
    """Waits between retries of rate-limited calls; `attempts` counts every try, the first too."""

    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0
    attempts: int = 3
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_s < 0 or self.max_s < self.base_s or self.factor < 1:
            raise ValueError("need 0 <= base_s <= max_s and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        raw = min(self.max_s, self.base_s * self.factor ** (retry - 1))
        return raw * random.uniform(1 - self.jitter, 1 + self.jitter)


def error_for(errcode: int, errmsg: str, *, path: str = "") -> WeComError:
    """The guidebot exception for a non-zero WeCom errcode."""
    if errcode in TOKEN_CODES:
        return WeComTokenError(errcode, errmsg, path=path)
    if errcode in RATE_LIMIT_CODES:
        return WeComRateLimited(errcode, errmsg, path=path)
    if errcode in CREDENTIAL_CODES:
        return WeComCredentialError(errcode, errmsg, path=path)
    if errcode == WELCOME_WINDOW_CLOSED:
        return WelcomeWindowClosed(errcode, errmsg, path=path)
    return WeComApiError(errcode, errmsg, path=path)


_executor: ThreadPoolExecutor | None = None
_executor_guard = threading.Lock()


def shared_executor() -> ThreadPoolExecutor:
    """The process-wide pool that runs wechatpy's blocking HTTP calls."""
    global _executor
    with _executor_guard:
        if _executor is None:
            _executor = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="wecom")
        return _executor


class _TimeoutSession(requests.Session):
    """wechatpy's gettoken passes no timeout; give every request one."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_WORKERS)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().request(method, url, *args, **kwargs)


class _TenantWeChatClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's client aimed at the tenant's api_base, gettoken included; never auto-retries."""

    def __init__(self, tenant: TenantSettings, timeout_s: float) -> None:
        super().__init__(tenant.corp_id, tenant.secret, timeout=timeout_s, auto_retry=False)
        self.API_BASE_URL = tenant.api_base
        self._http = _TimeoutSession(timeout_s)

    def fetch_access_token(self) -> dict[str, Any]:
        params = {"corpid": self.corp_id, "corpsecret": self.secret}
        try:
            result = self._fetch_access_token(url=self.API_BASE_URL + "gettoken", params=params)
        except (KeyError, TypeError):  # wechatpy indexes the answer without checking it
            raise WeComTransportError(None, "malformed gettoken answer", path="gettoken") from None
        return dict(result)


def _guarded(path: str, fn: Callable[[], T]) -> T:
    """Run a wechatpy call, turning whatever it raises into the guidebot tree.

    Causes are dropped on purpose: requests' messages carry the URL, and with it the
    access token or (for gettoken) the secret.
    """
    try:
        return fn()
    except WeChatClientException as exc:
        raise _from_wechatpy(exc, path) from None
    except requests.RequestException as exc:
        raise WeComTransportError(None, type(exc).__name__, path=path) from None


def _from_wechatpy(exc: WeChatClientException, path: str) -> WeComError:
    if exc.errcode is None:
        status = getattr(exc.response, "status_code", None)
        return WeComTransportError(None, f"HTTP {status}", path=path)
    return error_for(int(exc.errcode), str(exc.errmsg), path=path)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: dict[str, Any]
    body: dict[str, Any] | None = None
    files: dict[str, Any] | None = None


class WeComClient:
    """One tenant's WeCom API, async. Every call goes through the rate limiter and the token
    keeper; 40014/42001 refresh the token once, 45009/45033/-1 back off `attempts` times."""

    def __init__(
        self,
        tenant: TenantSettings,
        *,
        tokens: TokenStore,
        executor: Executor | None = None,
        backoff: BackoffConfig = BackoffConfig(),
        timeout_s: float = 10.0,
    ) -> None:
        self.tenant = tenant
        self._backoff = backoff
        self._executor = executor or shared_executor()
        self._wx = _TenantWeChatClient(tenant, timeout_s)
        self._limiter = shared_limiter(tenant.id, tenant.quotas.api_calls_per_min)
        self._tokens = TokenKeeper(tenant.id, tokens, self._fetch_token)

    def close(self) -> None:
        self._wx._http.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call `path` (relative to api_base, e.g. "externalcontact/get"); errcode 0 or raise."""
        if method.upper() not in ("GET", "POST"):
            raise ValueError(f"WeCom APIs are GET or POST, not {method}")
        return await self._call(_Request(method.upper(), path, dict(params or {}), json))

    # -- typed wrappers -------------------------------------------------------------------

    async def get_external_contact(
        self, external_userid: str, *, cursor: str = ""
    ) -> dict[str, Any]:
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        return await self.call("GET", "externalcontact/get", params=params)

    async def list_external_contacts(self, userid: str) -> dict[str, Any]:
        return await self.call("GET", "externalcontact/list", params={"userid": userid})

    async def batch_get_by_user(
        self, userids: Sequence[str], *, cursor: str = "", limit: int = 100
    ) -> dict[str, Any]:
        body = {"userid_list": list(userids), "cursor": cursor, "limit": limit}
        return await self.call("POST", "externalcontact/batch/get_by_user", json=body)

    async def get_corp_tag_list(
        self, tag_ids: Iterable[str] | None = None, group_ids: Iterable[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if tag_ids is not None:
            body["tag_id"] = list(tag_ids)
        if group_ids is not None:
            body["group_id"] = list(group_ids)
        return await self.call("POST", "externalcontact/get_corp_tag_list", json=body)

    async def add_corp_tag(
        self, *, group_name: str, tags: Sequence[str], group_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"group_name": group_name, "tag": [{"name": t} for t in tags]}
        if group_id:
            body["group_id"] = group_id
        return await self.call("POST", "externalcontact/add_corp_tag", json=body)

    async def mark_tag(
        self,
        *,
        userid: str,
        external_userid: str,
        add_tag: Iterable[str] = (),
        remove_tag: Iterable[str] = (),
    ) -> dict[str, Any]:
        body = {"userid": userid, "external_userid": external_userid,
                "add_tag": list(add_tag), "remove_tag": list(remove_tag)}
        return await self.call("POST", "externalcontact/mark_tag", json=body)

    async def add_contact_way(
        self,
        *,
        users: Sequence[str],
        state: str,
        remark: str = "",
        skip_verify: bool = True,
        scene: int = 2,
        type_: int = 1,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type_, "scene": scene, "skip_verify": skip_verify,
                                "state": state, "user": list(users)}
        if remark:
            body["remark"] = remark
        return await self.call("POST", "externalcontact/add_contact_way", json=body)

    async def send_welcome_msg(
        self, *, welcome_code: str, text: str | None, attachments: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        """41051 (code used, or the 20 s window passed) raises WelcomeWindowClosed."""
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text is not None:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        return await self.call("POST", "externalcontact/send_welcome_msg", json=body)

    async def add_msg_template(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "externalcontact/add_msg_template", json=body)

    async def send_app_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """message/send; partial failures come back in invaliduser etc., not as errors."""
        return await self.call("POST", "message/send",
                               json={"agentid": self.tenant.agent_id, **body})

    async def upload_media(self, media_type: str, filename: str, content: bytes) -> dict[str, Any]:
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        files = {"media": (filename, content, kind)}
        request = _Request("POST", "media/upload", {"type": media_type}, files=files)
        return await self._call(request)

    # -- machinery ------------------------------------------------------------------------

    async def unionid_to_external_userid(self, *, unionid: str, openid: str) -> str | None:
        """Self-built-app conversion (doc 93274 [mem]): the customer's external_userid or None."""
        body = {"unionid": unionid, "openid": openid}
        result = await self.call("POST", "externalcontact/unionid_to_external_userid", json=body)
        return result.get("external_userid") or None

    async def _call(self, request: _Request) -> dict[str, Any]:
        if request.path.startswith(("/", "http://", "https://")):
            raise ValueError("path must be relative to api_base, like 'externalcontact/get'")
        token: str | None = None
        refreshed, tries = False, 1
        while True:
            try:
                token = token or await self._tokens.current()
                return await self._send(request, token)
            except WeComTokenError as exc:
                if refreshed or token is None:
                    raise
                refreshed = True
                self._log_token_rejected(exc)
                await self._tokens.discard(token)
                token = None
            except WeComRateLimited as exc:
                if tries >= self._backoff.attempts:
                    raise
                await self._back_off(exc, tries)
                tries += 1

    async def _send(self, request: _Request, token: str) -> dict[str, Any]:
        params = {**request.params, "access_token": token}
        kwargs: dict[str, Any] = {"params": params}
        if request.body is not None:
            kwargs["data"] = request.body
        if request.files is not None:
            kwargs["files"] = request.files
        send = self._wx.get if request.method == "GET" else self._wx.post
        result = await self._run(request.path, functools.partial(send, request.path, **kwargs))
        if not isinstance(result, dict):
            raise WeComTransportError(None, "response is not a JSON object", path=request.path)
        return result

    async def _fetch_token(self) -> tuple[str, datetime]:
        started = datetime.now(UTC)
        result = await self._run("gettoken", self._wx.fetch_access_token)
        try:
            token = str(result["access_token"])
            expires_in = int(result.get("expires_in", 7200))
        except (KeyError, TypeError, ValueError):
            raise WeComTransportError(None, "malformed gettoken answer", path="gettoken") from None
        return token, started + timedelta(seconds=expires_in)

    async def _run(self, path: str, fn: Callable[[], T]) -> T:
        await self._limiter.acquire()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _guarded, path, fn)

    async def _back_off(self, exc: WeComError, tries: int) -> None:
        delay = self._backoff.delay(tries)
        logger.warning(
            "wecom call retry tenant=%s path=%s errcode=%s try=%d/%d wait=%.2fs",
            self.tenant.id, exc.path, exc.errcode, tries, self._backoff.attempts, delay,
        )
        await asyncio.sleep(delay)

    def _log_token_rejected(self, exc: WeComError) -> None:
        # Routine (WeCom may invalidate tokens early); a second rejection raises WeComTokenError.
        logger.info(
            "wecom access token rejected tenant=%s path=%s errcode=%s; refreshing once",
            self.tenant.id, exc.path, exc.errcode,
        )
