"""`guidebot demo` runs the whole story on a fresh SQLite database and says what happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_demo_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--config", str(ROOT / "config.toml"), "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Seeded 2 stores and 4 guides." in out
    assert out.count("exclusive guide: ") == 6
    assert "欢迎来到双11专场" in out and "静安嘉里中心店的导购李娜" in out
    assert "send_welcome_msg ×7" in out and "mark_tag ×7" in out
    assert (tmp_path / "demo.db").exists()
