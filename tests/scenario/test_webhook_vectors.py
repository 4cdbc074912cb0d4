"""The real app over HTTP with the documented / derived vectors, for a tenant keyed like the doc.

Tenant "doc" uses the official-doc Token, EncodingAESKey and CorpID, so the official request
lines and the derived encrypted bodies in tests/data/crypto verify unchanged. The app's clock
is pinned to each vector's timestamp; WeCom itself is the local sandbox.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from yarl import URL

from guidebot.app import RUNTIME, create_app
from guidebot.db.migrate import upgrade_async
from guidebot.db.models import InboxItem
from guidebot.sandbox import create_sandbox_app
from guidebot.settings import load_settings
from guidebot.wecom.client import BackoffConfig

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CRYPTO = DATA / "crypto"
OFFICIAL: dict[str, Any] = json.loads(
    (CRYPTO / "official-doc-QDG6eK_vectors.json").read_text(encoding="utf-8"))
DERIVED = sorted((CRYPTO / "derived-encrypted").glob("*.json"))
DERIVED_NOW = 1700000000
FAST_BACKOFF = BackoffConfig(base_s=0.01, factor=2.0, max_s=0.05, attempts=2, jitter=0.0)

CONFIG = """
content_library = "{library}"

[database]
url = "{db_url}"

[tenants.doc]
corp_id = "wx5823bf96d3bd56c7"
agent_id = 218
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "doc-secret-for-tests"
admin_token = "doc-admin-token"
"""


@dataclass
class DocBot:
    app: web.Application
    url: str
    http: aiohttp.ClientSession

    @property
    def callback(self) -> str:
        return f"{self.url}/wecom/doc/callback"

    async def inbox_rows(self) -> list[InboxItem]:
        async with self.app[RUNTIME].services.db.read() as s:
            stmt = select(InboxItem).where(InboxItem.tenant == "doc").order_by(InboxItem.id)
            return list((await s.execute(stmt)).scalars())

    async def post(self, query: dict[str, str], body: bytes) -> tuple[int, bytes]:
        async with self.http.post(self.callback, params=query, data=body) as resp:
            return resp.status, await resp.read()


Start = Callable[[float], Awaitable[DocBot]]


@pytest.fixture
async def start_doc(aiohttp_server: Any, tmp_path: Path, db_url: str) -> AsyncIterator[Start]:
    """start_doc(now) → the real app for tenant "doc" with its clock pinned at `now`."""
    sessions: list[aiohttp.ClientSession] = []
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(library=ROOT / "content_library", db_url=db_url),
                      encoding="utf-8")
    settings = load_settings(config)
    sandbox = await aiohttp_server(create_sandbox_app(settings))
    api_base = str(sandbox.make_url("/cgi-bin/"))
    settings = replace(settings, tenants={
        tid: replace(t, api_base=api_base) for tid, t in settings.tenants.items()})
    await upgrade_async(db_url)

    async def start(now: float) -> DocBot:
        app = create_app(settings, start_jobs=False, backoff=FAST_BACKOFF, workers=2,
                         clock=lambda: now)
        server = await aiohttp_server(app)
        http = aiohttp.ClientSession()
        sessions.append(http)
        return DocBot(app, str(server.make_url("")).rstrip("/"), http)

    yield start
    for http in sessions:
        await http.close()


def _derived(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert vector["query"]["timestamp"] == str(DERIVED_NOW)
    return vector


def _plaintext_of(vector: dict[str, Any]) -> str:
    return (DATA / "events" / Path(vector["plaintext_file"]).name).read_text(encoding="utf-8")


def test_all_derived_vectors_are_here() -> None:
    assert len(DERIVED) == 7


@pytest.mark.parametrize("path", DERIVED, ids=[p.stem for p in DERIVED])
async def test_derived_body_is_acked_empty_and_stored_once(start_doc: Start, path: Path) -> None:
    vector = _derived(path)
    bot = await start_doc(DERIVED_NOW)
    status, body = await bot.post(vector["query"], vector["post_body"].encode("utf-8"))
    assert (status, body) == (200, b"")
    rows = await bot.inbox_rows()
    assert len(rows) == 1
    assert rows[0].payload == _plaintext_of(vector)

    # WeCom retries the same delivery when unsure: still 200, still one row
    status, body = await bot.post(vector["query"], vector["post_body"].encode("utf-8"))
    assert (status, body) == (200, b"")
    await asyncio.wait_for(bot.app[RUNTIME].drain(), timeout=30)
    rows = await bot.inbox_rows()
    assert len(rows) == 1
    assert rows[0].processed_at is not None and rows[0].outcome


async def test_every_derived_body_in_one_app(start_doc: Start) -> None:
    bot = await start_doc(DERIVED_NOW)
    vectors = [_derived(p) for p in DERIVED]
    results = await asyncio.gather(*(bot.post(v["query"], v["post_body"].encode())
                                     for v in vectors))
    assert results == [(200, b"")] * len(vectors)
    rows = await bot.inbox_rows()
    assert sorted(r.payload for r in rows) == sorted(_plaintext_of(v) for v in vectors)


async def test_derived_body_is_refused_when_the_clock_is_far_off(start_doc: Start) -> None:
    vector = _derived(DERIVED[0])
    bot = await start_doc(DERIVED_NOW + 601)
    status, _ = await bot.post(vector["query"], vector["post_body"].encode())
    assert status == 403
    assert await bot.inbox_rows() == []


async def test_official_get_url_verification_raw_query(start_doc: Start) -> None:
    get = OFFICIAL["url_verify"]
    request_line = get["request_line_urlencoded"]
    raw_query = request_line.split("?", 1)[1].rsplit(" HTTP/", 1)[0]
    assert "%2F" in raw_query and "%2B" in raw_query and "%3D" in raw_query
    bot = await start_doc(int(get["timestamp"]))
    url = URL(f"{bot.callback}?{raw_query}", encoded=True)
    async with bot.http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain"
        assert await resp.read() == b"1616140317555161061"
    assert await bot.inbox_rows() == []


async def test_official_get_url_verification_over_a_raw_socket(start_doc: Start) -> None:
    """Byte-level: exactly the documented request line, exactly the digits back."""
    get = OFFICIAL["url_verify"]
    raw_query = get["request_line_urlencoded"].split("?", 1)[1].rsplit(" HTTP/", 1)[0]
    bot = await start_doc(int(get["timestamp"]))
    status, headers, body = await _raw_request(
        bot.url, f"GET /wecom/doc/callback?{raw_query} HTTP/1.1\r\n".encode(), b"")
    assert status == 200
    assert body == b"1616140317555161061"
    assert int(headers["content-length"]) == 19


async def test_official_get_with_a_stale_clock_is_403(start_doc: Start) -> None:
    get = OFFICIAL["url_verify"]
    raw_query = get["request_line_urlencoded"].split("?", 1)[1].rsplit(" HTTP/", 1)[0]
    bot = await start_doc(int(get["timestamp"]) + 601)
    async with bot.http.get(URL(f"{bot.callback}?{raw_query}", encoded=True)) as resp:
        assert resp.status == 403
        assert b"1616140317555161061" not in await resp.read()


async def test_official_post_vector(start_doc: Start) -> None:
    post = OFFICIAL["decrypt_post"]
    bot = await start_doc(int(post["timestamp"]))
    query = {k: post[k] for k in ("msg_signature", "timestamp", "nonce")}
    status, body = await bot.post(query, (CRYPTO / post["body_file"]).read_bytes())
    assert (status, body) == (200, b"")
    rows = await bot.inbox_rows()
    assert len(rows) == 1
    expected = (CRYPTO / post["expected_plaintext_file"]).read_text(encoding="utf-8")
    assert rows[0].payload == expected


async def test_official_post_vector_as_raw_request_line(start_doc: Start) -> None:
    post = OFFICIAL["decrypt_post"]
    raw_query = post["request_line"].split("?", 1)[1].rsplit(" HTTP/", 1)[0]
    body = (CRYPTO / post["body_file"]).read_bytes()
    bot = await start_doc(int(post["timestamp"]))
    status, _, answer = await _raw_request(
        bot.url, f"POST /wecom/doc/callback?{raw_query} HTTP/1.1\r\n".encode(), body)
    assert (status, answer) == (200, b"")
    assert len(await bot.inbox_rows()) == 1


async def test_official_post_body_arriving_in_two_tcp_segments(start_doc: Start) -> None:
    """A callback whose body is split across packets (ordinary on the internet) is valid."""
    post = OFFICIAL["decrypt_post"]
    raw_query = post["request_line"].split("?", 1)[1].rsplit(" HTTP/", 1)[0]
    body = (CRYPTO / post["body_file"]).read_bytes()
    bot = await start_doc(int(post["timestamp"]))
    status, _, answer = await _raw_request(
        bot.url, f"POST /wecom/doc/callback?{raw_query} HTTP/1.1\r\n".encode(), body,
        split_body_at=len(body) // 2)
    assert status == 200, f"valid callback split in two segments answered {status}: {answer!r}"
    assert len(await bot.inbox_rows()) == 1


async def _raw_request(base: str, request_line: bytes, body: bytes, *,
                       split_body_at: int | None = None) -> tuple[int, dict[str, str], bytes]:
    url = URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        head = (request_line + f"Host: {url.host}:{url.port}\r\n".encode()
                + b"Connection: close\r\n")
        if body or request_line.startswith(b"POST"):
            head += (b"Content-Type: text/xml\r\n"
                     + f"Content-Length: {len(body)}\r\n".encode())
        writer.write(head + b"\r\n")
        if split_body_at is None:
            writer.write(body)
        else:
            writer.write(body[:split_body_at])
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(body[split_body_at:])
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    head_bytes, _, answer = raw.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, answer
