"""Secrets stay out of logs: the sandbox's access log masks corpsecret and access_token."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.support.procs import Server, free_port
from tests.support.stack import write_config

SECRET = "acme-secret-for-tests"


def test_sandbox_access_log_masks_secret_and_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    port = free_port()
    server = Server.start(["sandbox", "--config", str(config), "--port", str(port)], tmp_path)
    try:
        base = f"http://127.0.0.1:{port}/cgi-bin"
        got = json.loads(server.wait_http(
            f"{base}/gettoken?corpid=wwacme5823bf96d3bd&corpsecret={SECRET}"))
        token = got["access_token"]
        with urllib.request.urlopen(f"{base}/externalcontact/list?access_token={token}"
                                    "&userid=lina") as resp:
            assert "errcode" in json.loads(resp.read())
    finally:
        server.stop()
    log = server.err.read_text("utf-8")
    assert "GET /cgi-bin/gettoken?corpid=wwacme5823bf96d3bd&corpsecret=***" in log, log
    assert "GET /cgi-bin/externalcontact/list?access_token=***&userid=lina" in log, log
    assert SECRET not in log and token not in log
