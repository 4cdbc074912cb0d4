"""What the benchmark scripts share: the bench tenant's config and a free local port."""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A sandbox-only tenant; `quotas` lines are appended under [tenants.bench.quotas].
_CONFIG = """
content_library = "{library}"
[database]
url = "{db_url}"
[tenants.bench]
corp_id = "wwbench0000000001"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "bench-secret"
admin_token = "bench-admin-token"
api_base = "{api_base}"
[tenants.bench.quotas]
api_calls_per_min = 1000000
{quotas}
"""


def bench_config(db_url: str, *, api_base: str = "https://qyapi.weixin.qq.com/cgi-bin/",
                 quotas: str = "", library: Path = ROOT / "content_library") -> str:
    return _CONFIG.format(library=library, db_url=db_url, api_base=api_base, quotas=quotas)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
