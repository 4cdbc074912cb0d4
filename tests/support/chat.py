"""The reply router over the shipped content library, with its LLM at a local server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from guidebot.chat.routing import ChatRouter, load_router
from guidebot.settings import LlmSettings
from tests.support.llm_server import FakeLlm
from tests.support.stack import Stack, start_stack

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "content_library"
TIMEOUT_S = 5.0  # the scripted slow answer takes longer (a loaded machine needs the margin)


def llm_settings(base_url: str) -> LlmSettings:
    return LlmSettings(base_url=base_url, model="local-test", api_key="sk-local-test",
                       timeout_s=TIMEOUT_S)


_built: list[ChatRouter] = []


def build_router(base_url: str = "", library: Path = LIBRARY) -> ChatRouter:
    """A router; `close_routers` (the `routers_closed` fixture) closes its model client."""
    router = load_router(library, llm_settings(base_url))
    _built.append(router)
    return router


@pytest.fixture
async def routers_closed() -> AsyncIterator[None]:
    """Close the model clients of the routers a test built (their aiohttp sessions)."""
    yield
    while _built:
        await _built.pop().llm.close()


async def start_llm(aiohttp_server: Any) -> tuple[FakeLlm, str]:
    fake = FakeLlm()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/v1"))


async def start_llm_stack(aiohttp_server: Any, tmp_path: Path, db_url: str, *,
                          timeout_s: float = TIMEOUT_S) -> tuple[Stack, FakeLlm]:
    """The stack with `[llm]` at a local OpenAI-compatible server (the real openai client)."""
    fake, url = await start_llm(aiohttp_server)
    extra = (f'\n[llm]\nbase_url = "{url}"\nmodel = "local-test"\napi_key = "sk-local"\n'
             f"timeout_s = {timeout_s}\n")
    return await start_stack(aiohttp_server, tmp_path, db_url, config_extra=extra), fake
