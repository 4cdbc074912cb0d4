"""The CLI never turns on loggers that would print SQL parameters, tokens or secrets."""

from __future__ import annotations

import logging
from pathlib import Path

from guidebot.cli import main
from tests.support.stack import write_config


def test_debug_log_level_keeps_leaky_loggers_quiet(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert main(["--log-level", "DEBUG", "db", "upgrade", "--config", str(config)]) == 0
    assert logging.getLogger("guidebot").isEnabledFor(logging.DEBUG)
    for name in ("sqlalchemy.engine", "aiosqlite", "urllib3.connectionpool", "apscheduler"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
