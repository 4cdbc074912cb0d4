"""The demo's commerce chapter: card, visit, order, partial refund, statement."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_demo_commerce_chapter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-serve", "--config", str(ROOT / "config.toml"), "--workdir",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rule share_link, guide lina, commission ¥50.89" in out
    assert "clawback ¥9.00" in out and "→ 200 applied (the stored result" in out
    assert "lina: earned ¥50.89, clawback ¥9.00, net ¥41.89, orders 1" in out
