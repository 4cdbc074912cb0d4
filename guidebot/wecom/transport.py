"""HTTP to one tenant's WeCom API base: JSON in and out, errcodes raised as guidebot errors.

aiohttp on the event loop, one session per loop, kept alive across calls. It does what
wechatpy's synchronous client did for us (FACTS §5.3: URL, token in the query, UTF-8 JSON
with ensure_ascii=False, errcode check) without a thread hop and the requests stack per call.
Nothing that reaches an exception or a log carries the URL: its query holds the access token,
or for gettoken the secret.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from guidebot.errors import WeComError, WeComTransportError

MAX_CONNECTIONS = 32

ErrorFor = Callable[..., WeComError]
OnResult = Callable[[str, int | None], None]  # (path, errcode: 0 ok, None no answer)
Files = dict[str, tuple[str, bytes, str]]  # part name → (filename, content, content type)


class Transport:
    def __init__(self, api_base: str, timeout_s: float, error_for: ErrorFor) -> None:
        self.api_base = api_base
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._error_for = error_for
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_result: OnResult | None = None  # e.g. metrics: every call's outcome

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS))
            self._loop = loop
        return self._session

    async def call(self, method: str, path: str, *, params: dict[str, Any],
                   body: dict[str, Any] | None = None, files: Files | None = None
                   ) -> dict[str, Any]:
        """The JSON object WeCom answered; a non-zero errcode raises its error type."""
        try:
            result = await self._request(method, path, params=params, body=body, files=files)
        except WeComError as exc:
            if self.on_result is not None:
                self.on_result(path, exc.errcode)
            raise
        if self.on_result is not None:
            self.on_result(path, 0)
        return result

    async def _request(self, method: str, path: str, *, params: dict[str, Any],
                       body: dict[str, Any] | None, files: Files | None) -> dict[str, Any]:
        data: bytes | aiohttp.FormData | None = None
        headers = {}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        if files:
            form = aiohttp.FormData()
            for name, (filename, content, kind) in files.items():
                form.add_field(name, content, filename=filename, content_type=kind)
            data = form
        try:
            async with self._open().request(method, self.api_base + path, params=params,
                                            data=data, headers=headers) as resp:
                status, raw = resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # aiohttp can turn a cancellation into a timeout: the task was cancelled (a
                # shutdown), so it must stop, not see a transport error and carry on.
                raise asyncio.CancelledError from None
            raise WeComTransportError(None, type(exc).__name__, path=path) from None
        if status != 200:
            raise WeComTransportError(None, f"HTTP {status}", path=path)
        try:
            result = json.loads(raw.decode("utf-8", "ignore"))
        except ValueError:
            raise WeComTransportError(None, "response is not JSON", path=path) from None
        if not isinstance(result, dict):
            raise WeComTransportError(None, "response is not a JSON object", path=path)
        try:
            errcode = int(result.get("errcode") or 0)
        except (TypeError, ValueError):
            raise WeComTransportError(None, "errcode is not a number", path=path) from None
        if errcode:
            raise self._error_for(errcode, str(result.get("errmsg", "")), path=path)
        return result

    async def download(self, path: str, *, params: dict[str, Any]) -> dict[str, Any]:
        """GET a file (media/get): {"content": bytes, "content_type": str}. WeCom answers an
        error as a JSON errcode body instead of the file, raised like any call's."""
        try:
            async with self._open().get(self.api_base + path, params=params) as resp:
                status, kind, raw = resp.status, resp.content_type, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            if self.on_result is not None:
                self.on_result(path, None)
            raise WeComTransportError(None, type(exc).__name__, path=path) from None
        errcode: int | None = 0
        try:
            if status != 200:
                errcode = None
                raise WeComTransportError(None, f"HTTP {status}", path=path)
            if kind in ("application/json", "text/plain"):
                try:
                    result = json.loads(raw.decode("utf-8", "ignore"))
                except ValueError:
                    result = None
                if isinstance(result, dict) and result.get("errcode"):
                    errcode = int(result["errcode"])
                    raise self._error_for(errcode, str(result.get("errmsg", "")), path=path)
        finally:
            if self.on_result is not None:
                self.on_result(path, errcode)
        return {"content": raw, "content_type": kind}

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
