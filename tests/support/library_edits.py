"""Editing a running app's content library in tests: edit a file, run the reload job, read
the problems the API lists and what the 微信客服 bot answers."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from guidebot import jobs
from tests.support.kf import customer_writes, kf_rows, sent_texts
from tests.support.stack import ROOT, Stack, start_stack


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def reload(stack: Stack) -> None:
    """The reload job, twice: an edit is applied once the files are the same on two looks."""
    await jobs.run_library_reload(stack.runtime.services)
    await jobs.run_library_reload(stack.runtime.services)


async def library_errors(stack: Stack) -> list[Any]:
    status, body = await stack.admin("/sops")
    assert status == 200, body
    return list(body["library_errors"])


async def answer(stack: Stack, customer: str, text: str) -> tuple[list[str], str]:
    """What the bot sent a new customer for `text`, and the route:reason recorded."""
    await customer_writes(stack, customer, text)
    [row] = await kf_rows(stack, customer)
    return sent_texts(stack, customer), f"{row.route}:{row.reason}"


@pytest.fixture(name="library_stack")
async def library_stack_fixture(aiohttp_server: Any, tmp_path: Path,
                        db_url: str) -> AsyncIterator[tuple[Stack, Path]]:
    """A running app on its own copy of content_library (the folder, to edit)."""
    library = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", library)
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield stack, library
    await stack.http.close()
