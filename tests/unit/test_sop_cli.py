"""`guidebot sop validate|preview` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "config.toml")


def test_validate_the_shipped_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sop", "validate", "--config", CONFIG]) == 0
    assert "5 SOPs, 3 drops" in capsys.readouterr().out


def test_validate_reports_every_problem_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages/m.toml").write_text('text = "{{ customer.age }}"\n', "utf-8")
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops/s.toml").write_text(
        'id = "s"\ntitle = "t"\n[trigger]\non = "manual"\n[[steps]]\nat = "+1x"\n'
        'channel = "guide_task"\nmessage = "gone"\n', "utf-8")
    assert main(["sop", "validate", "--config", CONFIG, "--library", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "m.toml:1: unknown placeholder 'customer.age'" in err
    assert "s.toml:6: steps[0].at:" in err
    assert "s.toml:8: steps[0].message: unknown message id 'gone'" in err


def test_preview_prints_times_in_the_tenant_zone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sop", "preview", "--config", CONFIG, "--sop", "dormant_winback",
                 "--added-at", "2026-11-20T20:30:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-21T20:30:00+08:00" in out  # +1d
    assert "2026-11-25T20:30:00+08:00" in out and "reminder" in out
    assert main(["sop", "preview", "--config", CONFIG, "--sop", "nope"]) == 2
