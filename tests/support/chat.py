"""The reply router over the shipped content library, with its LLM at a local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guidebot.chat.routing import ChatRouter
from guidebot.commerce.catalog import load_catalog
from guidebot.content.chat import load_chat_content
from guidebot.content.library import load_library
from guidebot.llm.client import LlmClient
from guidebot.settings import LlmSettings
from tests.support.llm_server import FakeLlm

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "content_library"
TIMEOUT_S = 5.0  # the scripted slow answer takes longer (a loaded machine needs the margin)


def llm_settings(base_url: str) -> LlmSettings:
    return LlmSettings(base_url=base_url, model="local-test", api_key="sk-local-test",
                       timeout_s=TIMEOUT_S)


def build_router(base_url: str = "", library: Path = LIBRARY) -> ChatRouter:
    loaded = load_library(library)
    return ChatRouter(load_chat_content(library, set(loaded.messages)), loaded,
                      load_catalog(library), LlmClient(llm_settings(base_url)))


async def start_llm(aiohttp_server: Any) -> tuple[FakeLlm, str]:
    fake = FakeLlm()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/v1"))
