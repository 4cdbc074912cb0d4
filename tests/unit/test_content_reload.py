"""Hot reload of content_library: settle, swap in place, reject with file:line, recover."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from guidebot.content.library import load_library
from guidebot.content.reload import library_is_newest, problems_json, reload_library

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def test_a_valid_edit_settles_then_replaces_the_content_in_place(root: Path) -> None:
    library = load_library(root)
    messages_before = library.messages
    assert (await reload_library(library)).status == "unchanged"
    (root / "messages" / "welcome_default.toml").write_text('text = "热更新"\n',
                                                            encoding="utf-8")
    assert (await reload_library(library)).status == "settling"
    assert library.messages is messages_before  # seen once: not yet
    outcome = await reload_library(library)
    assert outcome.replaced and not outcome.tags_changed
    assert library.messages["welcome_default"].text.startswith("热更新")
    assert await library_is_newest(library)
    _edit(root / "tags.toml", '"沉睡客"]', '"沉睡客", "高净值"]')
    assert (await reload_library(library, settle=False)).tags_changed
    assert any("高净值" in g.tags for g in library.tag_groups)


async def test_an_invalid_edit_is_rejected_once_and_cleared_when_undone(
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    library = load_library(root)
    sop_file = root / "sops" / "dormant_winback.toml"
    original = sop_file.read_text(encoding="utf-8")
    _edit(sop_file, 'on_quota = "skip"', 'on_quota = "skip"\nsnooze = true')
    assert not await library_is_newest(library)  # changed on disk, not reloaded yet
    with caplog.at_level(logging.ERROR, logger="guidebot.content.reload"):
        assert (await reload_library(library, settle=False)).status == "rejected"
        assert (await reload_library(library, settle=False)).status == "rejected"
    rejected = [r.getMessage() for r in caplog.records if "rejected:" in r.getMessage()]
    assert rejected == ["content_library edit rejected: sops/dormant_winback.toml:7: "
                        "unknown key 'snooze'"]  # logged once, not every look
    assert problems_json(library) == [{"file": "sops/dormant_winback.toml", "line": 7,
                                       "message": "unknown key 'snooze'"}]
    assert library.sops["dormant_winback"].on_quota == "skip"  # still in force
    assert await library_is_newest(library)  # the rejected files are not newer content
    sop_file.write_text(original, encoding="utf-8")
    assert (await reload_library(library)).status == "unchanged"
    assert problems_json(library) == [] and library.rejected is None
