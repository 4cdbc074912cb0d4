"""WeComClient against the local WeCom sandbox over HTTP, with the token in a real database."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel

from guidebot.db.engine import Database
from guidebot.db.models import AccessToken
from guidebot.db.repo.tokens import DbTokenStore, delete_token_if, get_token, put_token
from guidebot.errors import (
    WeComCredentialError,
    WeComRateLimited,
    WeComTokenError,
    WeComTransportError,
    WelcomeWindowClosed,
)
from guidebot.sandbox import create_sandbox_app
from guidebot.settings import Settings, TenantSettings, load_settings
from guidebot.wecom.client import BackoffConfig, WeComClient
from guidebot.wecom.ratelimit import RateLimiter

TENANT = "acme"
SECRET = "s3cr3t-acme-app-secret-value"
FAST = BackoffConfig(base_s=0.05, factor=2.0, max_s=1.0, attempts=3, jitter=0.0)
TAGS = "externalcontact/get_corp_tag_list"
PG_ENV = "GUIDEBOT_TEST_DATABASE_URL"

CONFIG = f"""
content_library = "library"

[tenants.{TENANT}]
corp_id = "wwacme0001"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "{SECRET}"
admin_token = "admin-acme-token"
"""


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "library").mkdir()
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return load_settings(tmp_path / "config.toml")


@pytest.fixture
async def sandbox(aiohttp_server: Any, aiohttp_client: Any, settings: Settings) -> Any:
    server = await aiohttp_server(create_sandbox_app(settings))
    return await aiohttp_client(server)


@pytest.fixture
def tenant(sandbox: Any, settings: Settings) -> TenantSettings:
    return dataclasses.replace(
        settings.tenant(TENANT), api_base=f"{sandbox.server.make_url('/')}cgi-bin/"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def token_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
        await _with_tables(url, tables=None)
        yield url
        return
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(f"set {PG_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)")
    table = SQLModel.metadata.tables[str(AccessToken.__tablename__)]
    await _with_tables(url, tables=[table])
    yield url
    await _with_tables(url, tables=[table])  # leave it empty, not missing


async def _with_tables(url: str, *, tables: list[Any] | None) -> None:
    """None: create every table (SQLite). Else drop and recreate just those (PostgreSQL)."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            if tables is not None:
                await conn.run_sync(SQLModel.metadata.drop_all, tables=tables)
            await conn.run_sync(SQLModel.metadata.create_all, tables=tables)
    finally:
        await db.dispose()


@pytest.fixture
async def db(token_db_url: str) -> AsyncIterator[Database]:
    database = Database(token_db_url)
    yield database
    await database.dispose()


@pytest.fixture
async def client(tenant: TenantSettings, db: Database) -> AsyncIterator[WeComClient]:
    made = WeComClient(tenant, tokens=DbTokenStore(db), backoff=FAST)
    yield made
    await made.close()


# -- helpers ----------------------------------------------------------------------------------


async def calls(sandbox: Any, path: str, *, any_tenant: bool = False) -> list[dict[str, Any]]:
    """Recorded calls to `path`; a call with an unknown token belongs to no tenant."""
    query = {"path": path} if any_tenant else {"tenant": TENANT, "path": path}
    resp = await sandbox.get("/_sandbox/calls", params=query)
    assert resp.status == 200
    return list((await resp.json())["calls"])


async def fault(sandbox: Any, path: str, errcode: int, times: int) -> None:
    body = {"tenant": TENANT, "path": path, "errcode": errcode, "times": times}
    resp = await sandbox.post("/_sandbox/faults", json=body)
    assert resp.status in (200, 201), await resp.text()


async def stored_token(db: Database) -> str | None:
    async with db.read() as session:
        row = await get_token(session, tenant=TENANT)
        return None if row is None else row.token


# -- token cache ------------------------------------------------------------------------------


async def test_token_cached_in_db_and_reused_by_second_client(
    sandbox: Any, tenant: TenantSettings, client: WeComClient, token_db_url: str, db: Database
) -> None:
    first = await client.get_corp_tag_list()
    token = await stored_token(db)

    other_db = Database(token_db_url)  # a second process would have its own engine
    try:
        other = WeComClient(tenant, tokens=DbTokenStore(other_db), backoff=FAST)
        second = await other.get_corp_tag_list()
        await other.close()
    finally:
        await other_db.dispose()

    assert first["errcode"] == 0 and second["errcode"] == 0
    assert token
    assert await stored_token(db) == token
    assert len(await calls(sandbox, "gettoken")) == 1
    assert len(await calls(sandbox, TAGS)) == 2


async def test_a_process_holding_a_replaced_token_adopts_the_new_one_without_gettoken(
    sandbox: Any, tenant: TenantSettings, client: WeComClient, token_db_url: str, db: Database
) -> None:
    other_db = Database(token_db_url)  # a second process, its own engine and memory
    try:
        other = WeComClient(tenant, tokens=DbTokenStore(other_db), backoff=FAST)
        await client.get_corp_tag_list()
        await other.get_corp_tag_list()  # both now remember the first token
        resp = await sandbox.post(f"/_sandbox/{TENANT}/revoke_token")  # WeCom ends it early
        assert resp.status == 200
        await client.get_corp_tag_list()  # rejected, refreshed: the second token
        assert (await other.get_corp_tag_list())["errcode"] == 0  # rejected, then read back
        await other.close()
    finally:
        await other_db.dispose()
    assert len(await calls(sandbox, "gettoken")) == 2
    rejected = [c for c in await calls(sandbox, TAGS, any_tenant=True) if c["errcode"]]
    assert len(rejected) == 2  # one per process, each with the revoked token


async def test_token_near_expiry_is_refetched(
    sandbox: Any, client: WeComClient, db: Database
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=4)  # inside the 5-minute margin
    async with db.write() as session:
        await put_token(session, tenant=TENANT, token="old-token", expires_at=soon)

    await client.get_corp_tag_list()

    assert len(await calls(sandbox, "gettoken")) == 1
    # fetched before use, not after a 40014
    assert len(await calls(sandbox, TAGS, any_tenant=True)) == 1
    assert await stored_token(db) not in (None, "old-token")


async def test_revoked_token_is_refreshed_exactly_once(
    sandbox: Any, client: WeComClient, db: Database
) -> None:
    await client.get_corp_tag_list()
    before = await stored_token(db)
    resp = await sandbox.post(f"/_sandbox/{TENANT}/revoke_token")
    assert resp.status == 200

    results = await asyncio.gather(*(client.get_corp_tag_list() for _ in range(10)))

    assert all(r["errcode"] == 0 for r in results)
    assert len(await calls(sandbox, "gettoken")) == 2
    after = await stored_token(db)
    assert after is not None and after != before


async def test_persistent_42001_raises_token_error_after_one_refresh(
    sandbox: Any, client: WeComClient
) -> None:
    await client.get_corp_tag_list()  # token now cached
    await fault(sandbox, "externalcontact/get", 42001, -1)

    with pytest.raises(WeComTokenError) as info:
        await client.get_external_contact("wmEXTERNAL1")

    assert info.value.errcode == 42001
    assert info.value.path == "externalcontact/get"
    assert len(await calls(sandbox, "gettoken")) == 2  # the first fetch + one refresh
    assert len(await calls(sandbox, "externalcontact/get")) == 2


async def test_persistent_42001_with_empty_cache_fetches_at_most_twice(
    sandbox: Any, client: WeComClient
) -> None:
    await fault(sandbox, "externalcontact/get", 42001, -1)

    with pytest.raises(WeComTokenError):
        await client.get_external_contact("wmEXTERNAL1")

    assert len(await calls(sandbox, "gettoken")) == 2


async def test_40001_on_gettoken_raises_credential_error_without_retry(
    sandbox: Any, client: WeComClient
) -> None:
    await fault(sandbox, "gettoken", 40001, -1)

    with pytest.raises(WeComCredentialError) as info:
        await client.get_corp_tag_list()

    assert info.value.errcode == 40001
    assert len(await calls(sandbox, "gettoken")) == 1
    assert await calls(sandbox, TAGS) == []


# -- backoff ----------------------------------------------------------------------------------


async def test_45009_twice_then_success_after_backoff(
    sandbox: Any, client: WeComClient, caplog: pytest.LogCaptureFixture, db: Database
) -> None:
    await fault(sandbox, TAGS, 45009, 2)
    caplog.set_level(logging.WARNING, logger="guidebot.wecom.client")

    started = time.monotonic()
    result = await client.get_corp_tag_list()
    elapsed = time.monotonic() - started

    assert result["errcode"] == 0
    assert len(await calls(sandbox, TAGS)) == 3
    assert elapsed >= FAST.delay(1) + FAST.delay(2)  # 0.05 + 0.10 s, jitter is 0
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2
    message = retries[0].getMessage()
    assert TENANT in message and TAGS in message and "45009" in message
    token = await stored_token(db)
    assert token and all(token not in r.getMessage() for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_45009_forever_raises_rate_limited_after_attempts(
    sandbox: Any, client: WeComClient
) -> None:
    await fault(sandbox, TAGS, 45009, -1)

    with pytest.raises(WeComRateLimited) as info:
        await client.get_corp_tag_list()

    assert info.value.errcode == 45009
    assert len(await calls(sandbox, TAGS)) == FAST.attempts


async def test_system_busy_is_retried(sandbox: Any, client: WeComClient) -> None:
    await fault(sandbox, TAGS, -1, 1)

    result = await client.get_corp_tag_list()

    assert result["errcode"] == 0
    assert len(await calls(sandbox, TAGS)) == 2


async def test_41051_is_welcome_window_closed_and_not_retried(
    sandbox: Any, client: WeComClient
) -> None:
    await fault(sandbox, "externalcontact/send_welcome_msg", 41051, -1)

    with pytest.raises(WelcomeWindowClosed):
        await client.send_welcome_msg(welcome_code="CODE", text="hello")

    assert len(await calls(sandbox, "externalcontact/send_welcome_msg")) == 1


# -- concurrency and limits -------------------------------------------------------------------


async def test_50_concurrent_calls_with_empty_cache_fetch_one_token(
    sandbox: Any, client: WeComClient
) -> None:
    results = await asyncio.gather(*(client.get_corp_tag_list() for _ in range(50)))

    assert [r["errcode"] for r in results] == [0] * 50
    assert len(await calls(sandbox, "gettoken")) == 1
    assert len(await calls(sandbox, TAGS)) == 50


async def test_client_waits_for_the_tenant_rate_limit(
    sandbox: Any, tenant: TenantSettings, db: Database
) -> None:
    quotas = dataclasses.replace(tenant.quotas, api_calls_per_min=601)  # ~10/s, burst 11
    slow = WeComClient(dataclasses.replace(tenant, quotas=quotas), tokens=DbTokenStore(db))

    started = time.monotonic()
    await asyncio.gather(*(slow.get_corp_tag_list() for _ in range(13)))  # + 1 gettoken
    await slow.close()

    assert time.monotonic() - started >= 0.25  # 14 calls, 11 free, 3 at 0.1 s each


async def test_rate_limiter_spaces_calls_after_the_burst() -> None:
    now = [100.0]
    limiter = RateLimiter(60, burst=2, clock=lambda: now[0])  # one per second

    waits = [limiter.reserve() for _ in range(4)]
    now[0] += 10.0
    refilled = limiter.reserve()

    assert waits == [0.0, 0.0, 1.0, 2.0]
    assert refilled == 0.0


# -- typed wrappers on the wire --------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_add_corp_tag_then_filter_by_group(client: WeComClient) -> None:
    added = await client.add_corp_tag(group_name="Interest", tags=["shoes", "bags"])
    group_id = added["tag_group"]["group_id"]

    listed = await client.get_corp_tag_list(group_ids=[group_id])

    assert [g["group_name"] for g in listed["tag_group"]] == ["Interest"]
    assert sorted(t["name"] for t in listed["tag_group"][0]["tag"]) == ["bags", "shoes"]


async def test_add_contact_way_sends_state_and_user(sandbox: Any, client: WeComClient) -> None:
    result = await client.add_contact_way(users=["guide1"], state="g1c2", remark="spring")

    body = (await calls(sandbox, "externalcontact/add_contact_way"))[0]["body"]
    assert result["config_id"] and result["qr_code"]
    assert body == {"type": 1, "scene": 2, "skip_verify": True, "state": "g1c2",
                    "user": ["guide1"], "remark": "spring"}


async def test_send_app_message_fills_agentid(sandbox: Any, client: WeComClient) -> None:
    message = {"touser": "guide1", "msgtype": "text", "text": {"content": "hi"}}

    result = await client.send_app_message(message)

    assert result["errcode"] == 0 and result["invaliduser"] == ""
    body = (await calls(sandbox, "message/send"))[0]["body"]
    assert body == {"agentid": 1000002, **message}


async def test_upload_media_sends_multipart(sandbox: Any, client: WeComClient) -> None:
    result = await client.upload_media("image", "poster.png", PNG)

    call = (await calls(sandbox, "media/upload"))[0]
    assert result["type"] == "image" and result["media_id"]
    assert call["query"]["type"] == "image"
    assert call["body"]["media"] == {"filename": "poster.png", "size": len(PNG),
                                     "content_type": "image/png"}


async def test_absolute_urls_are_refused(client: WeComClient) -> None:
    with pytest.raises(ValueError):
        await client.call("GET", "https://example.invalid/cgi-bin/gettoken")


# -- transport and repo -----------------------------------------------------------------------


async def test_transport_error_hides_the_secret(
    tenant: TenantSettings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    dead = dataclasses.replace(tenant, api_base=f"http://127.0.0.1:{port}/cgi-bin/")
    client = WeComClient(dead, tokens=DbTokenStore(db), timeout_s=2.0)
    caplog.set_level(logging.DEBUG, logger="guidebot")

    with pytest.raises(WeComTransportError) as info:
        await client.get_corp_tag_list()
    await client.close()

    assert info.value.errcode is None and info.value.path == "gettoken"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert SECRET not in str(info.value)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_delete_token_if_keeps_a_newer_token(db: Database) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    async with db.write() as session:
        await put_token(session, tenant=TENANT, token="t1", expires_at=later)
        await put_token(session, tenant=TENANT, token="t2", expires_at=later)
    async with db.write() as session:
        stale_deleted = await delete_token_if(session, tenant=TENANT, token="t1")
    kept = await stored_token(db)
    async with db.write() as session:
        current_deleted = await delete_token_if(session, tenant=TENANT, token="t2")

    assert (stale_deleted, kept, current_deleted) == (False, "t2", True)
    assert await stored_token(db) is None


async def test_db_store_round_trips_an_aware_expiry(db: Database) -> None:
    store = DbTokenStore(db)
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    await store.put(TENANT, "tok", expires)

    assert await store.get(TENANT) == ("tok", expires)
    assert await store.get("other") is None
