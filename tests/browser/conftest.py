"""Headless Chromium for the console's browser tests: Debian's `chromium`, driven by
playwright's Python API (its own browser downloads are never used). Without either, the
tests report skipped with the reason."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    explicit = os.environ.get("GUIDEBOT_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser test: the playwright Python package is not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip("browser test: no chromium on PATH (Debian package chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                            headless=True)
        try:
            yield launched
        finally:
            await launched.close()
