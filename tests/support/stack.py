"""The real stack for scenario tests: the WeCom sandbox and guidebot, both over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from guidebot.app import RUNTIME, Runtime, create_app
from guidebot.inbox import InboxPolicy
from guidebot.sandbox import SANDBOX_KEY, Sandbox, create_sandbox_app
from guidebot.settings import Settings, load_settings
from guidebot.wecom.client import BackoffConfig
from tests.support.schema import migrate_async
from tests.support.wecom import SignedCallback, encrypt_callback

ROOT = Path(__file__).resolve().parents[2]
FAST_BACKOFF = BackoffConfig(base_s=0.01, factor=2.0, max_s=0.05, attempts=3, jitter=0.0)

CONFIG = """
content_library = "{library}"

[database]
url = "{db_url}"

[tenants.acme]
corp_id = "wwacme5823bf96d3bd"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "acme-secret-for-tests"
admin_token = "acme-admin-token"
order_secret = "acme-order-secret"
{acme}
[tenants.beta]
corp_id = "wwbeta0000000000002"
agent_id = 1000003
token = "BetaToken42"
encoding_aes_key = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
secret = "beta-secret-for-tests"
admin_token = "beta-admin-token"

[tenants.acme.kf]
open_kfids = ["wkACMEshop000000000000001"]
"""


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


def library_copy(folder: Path, files: Mapping[str, str | bytes | Path]) -> Path:
    """The shipped content_library copied to folder/library, with `files` added or replaced:
    a path inside the library → its text, its bytes, or a file to copy (e.g. tests/data)."""
    library = folder / "library"
    shutil.copytree(ROOT / "content_library", library)
    for name, content in files.items():
        target = library / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return library


def write_config(folder: Path, db_url: str, library: Path | None = None,
                 extra: str = "", acme: str = "") -> Path:
    """The test config; `acme` adds keys to [tenants.acme], `extra` tables at the end."""
    path = folder / "config.toml"
    path.write_text(CONFIG.format(library=library or ROOT / "content_library", db_url=db_url,
                                  acme=acme) + extra, encoding="utf-8")
    return path


@dataclass
class Stack:
    settings: Settings
    sandbox_url: str
    bot_url: str
    sandbox: Sandbox
    app: web.Application
    http: aiohttp.ClientSession
    server: Any = None  # guidebot's test server: `await stack.server.close()` stops it

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    def tenant(self, tenant: str = "acme") -> Any:
        return self.settings.tenant(tenant)

    async def post_callback(self, plaintext: str, tenant: str = "acme", **kw: Any) -> int:
        signed = encrypt_callback(self.tenant(tenant), plaintext, **kw)
        return await self.post_signed(signed, tenant)

    async def post_signed(self, signed: SignedCallback, tenant: str = "acme") -> int:
        async with self.http.post(f"{self.bot_url}/wecom/{tenant}/callback",
                                  params=signed.query, data=signed.body) as resp:
            await resp.read()
            return resp.status

    async def admin(self, path: str, tenant: str = "acme", token: str | None = None,
                    method: str = "GET", json: Any = None) -> tuple[int, Any]:
        token = token if token is not None else self.tenant(tenant).admin_token
        async with self.http.request(method, f"{self.bot_url}/api/v1/{tenant}{path}",
                                     headers={"Authorization": f"Bearer {token}"},
                                     json=json) as resp:
            return resp.status, await resp.json(content_type=None)

    def calls(self, path: str | None = None, tenant: str = "acme") -> list[dict[str, Any]]:
        return self.sandbox.calls(tenant=tenant, path=path)

    async def inbox_rows(self, tenant: str = "acme") -> list[Any]:
        from sqlalchemy import select

        from guidebot.db.models import InboxItem

        async with self.runtime.services.db.read() as s:
            stmt = select(InboxItem).where(InboxItem.tenant == tenant)
            return list((await s.execute(stmt)).scalars())


async def start_stack(aiohttp_server: Any, tmp_path: Path, db_url: str, *,
                      welcome_window_s: float = 20.0, workers: int = 256,
                      library: Path | None = None, config_extra: str = "",
                      acme_config: str = "", inbox: InboxPolicy | None = None) -> Stack:
    settings = load_settings(write_config(tmp_path, db_url, library, config_extra,
                                          acme_config))
    sandbox_app = create_sandbox_app(settings, welcome_window_s=welcome_window_s)
    sandbox_server = await aiohttp_server(sandbox_app)
    sandbox_url = str(sandbox_server.make_url("")).rstrip("/")
    tenants = {tid: replace(t, api_base=f"{sandbox_url}/cgi-bin/")
               for tid, t in settings.tenants.items()}
    settings = replace(settings, tenants=tenants)
    await migrate_async(db_url)
    app = create_app(settings, start_jobs=False, backoff=FAST_BACKOFF, workers=workers,
                     inbox=inbox)
    bot_server = await aiohttp_server(app)
    bot_url = str(bot_server.make_url("")).rstrip("/")
    sandbox = sandbox_app[SANDBOX_KEY]
    sandbox.set_callback_base(bot_url)
    http = aiohttp.ClientSession()
    return Stack(settings, sandbox_url, bot_url, sandbox, app, http, bot_server)


async def stack_with(aiohttp_server: Any, tmp_path: Path, db_url: str,
                     files: Mapping[str, str | bytes | Path]) -> Stack:
    """A stack whose content library is the shipped one with `files` added (library_copy)."""
    return await start_stack(aiohttp_server, tmp_path, db_url,
                             library=library_copy(tmp_path, files))


async def known(stack: Stack, *, customers: tuple[str, ...] = (), guides: tuple[str, ...] = (),
                tenant: str = "acme") -> None:
    """Factory: customers and guides this tenant knows (rows only: no follow, nothing sent)."""
    from guidebot.db.repo import contacts

    async with stack.runtime.services.db.write() as s:
        for customer in customers:
            await contacts.ensure_customer(s, tenant=tenant, external_userid=customer)
        for guide in guides:
            await contacts.ensure_guide(s, tenant=tenant, userid=guide)
