"""操作日志 in tests: the table's raw rows, the API's entries, a stack with console members and
viewers, and a console browser signed in through 企业微信登录 against the sandbox's OAuth."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from sqlalchemy import text

from guidebot.app import create_app
from guidebot.settings import load_settings
from tests.support.console import Console
from tests.support.sidebar import oauth_code
from tests.support.stack import Stack, start_stack, write_config

TEAM = (("lina", "李娜"), ("wangfang", "王芳"), ("chenjing", "陈静"))


async def start_team(aiohttp_server: Any, tmp_path: Any, db_url: str) -> Stack:
    """A stack whose acme console has lina as a member and wangfang as a viewer (chenjing is
    neither), the three named in the address book."""
    s = await start_stack(aiohttp_server, tmp_path, db_url, acme_config=(
        'console = { members = ["lina"], viewers = ["wangfang"] }\n'))
    await name_in_directory(s, TEAM)
    return s


async def name_in_directory(stack: Stack, team: tuple[tuple[str, str], ...]) -> None:
    """acme's address book holds these (userid, name) in one department, read now (not the
    start-up sync: it may have run before the book, and it skips while another sync holds
    the lock)."""
    book = {"departments": [{"id": 1, "name": "acme", "parentid": 0}],
            "members": [{"userid": u, "name": n, "department": [1]} for u, n in team],
            "deliver": False}
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/directory",
                               json=book) as resp:
        assert resp.status == 200
    await stack.runtime.services.directory.sync("acme")


def router_routes(tmp_path: Path, methods: frozenset[str] | None = None) -> list[str]:
    """Every route of the app as tests build it, as "METHOD template" (of `methods` when
    given), sorted."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'routes.db'}"
    app: web.Application = create_app(load_settings(write_config(tmp_path, db)),
                                      start_jobs=False)
    return sorted({f"{r.method} {r.resource.canonical}" for r in app.router.routes()
                   if r.resource is not None and (methods is None or r.method in methods)})


async def raw_rows(stack: Stack) -> list[dict[str, Any]]:
    """Every audit_log row as stored (every column), to scan for what must never be there."""
    async with stack.runtime.services.db.read() as s:
        result = await s.execute(text("SELECT * FROM audit_log ORDER BY id"))
        return [dict(row._mapping) for row in result]


async def entries(stack: Stack, query: str = "", tenant: str = "acme") -> list[dict[str, Any]]:
    status, body = await stack.admin(f"/audit{query}", tenant=tenant)
    assert status == 200, body
    return list(body["items"])


async def start_wecom(console: Console, tenant: str = "acme") -> dict[str, str]:
    """企业微信登录's first step: the query of the authorize URL the console sent us to."""
    status, _, resp = await console.get(f"/console/login/wecom?tenant={tenant}")
    assert status == 302, status
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


async def wecom_callback(console: Console, state: str, code: str,
                         tenant: str = "acme") -> tuple[int, str, Any]:
    return await console.get("/console/login/wecom",
                             params={"tenant": tenant, "code": code, "state": state})


async def wecom_sign_in(stack: Stack, userid: str, tenant: str = "acme") -> Console:
    """A console signed in as `userid` through WeCom's OAuth (a member or viewer)."""
    console = Console(stack)
    state = (await start_wecom(console, tenant))["state"]
    status, _, resp = await wecom_callback(console, state, await oauth_code(stack, userid,
                                                                            tenant), tenant)
    assert status == 303 and resp.headers["Location"] == f"/console/{tenant}/", status
    return console
