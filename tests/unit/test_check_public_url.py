"""`guidebot check` on server.public_url: a loopback address is a problem once a tenant talks
to WeCom itself (guides' phones open the links), never with a sandbox on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.check import _client_address, _public_url
from guidebot.settings import LlmSettings, ServerSettings, Settings, TenantSettings


def _settings(public_url: str, *api_bases: str) -> Settings:
    tenants = {f"t{n}": TenantSettings(id=f"t{n}", corp_id="ww1", agent_id=1, token="t",
                                       encoding_aes_key="k" * 43, secret="s",
                                       admin_token="a", api_base=base)
               for n, base in enumerate(api_bases)}
    return Settings(config_path=Path("config.toml"), content_library=Path("content_library"),
                    server=ServerSettings(public_url=public_url), database_url="sqlite://",
                    llm=LlmSettings(), tenants=tenants)


WECOM = "https://qyapi.weixin.qq.com/cgi-bin/"
SANDBOX = "http://127.0.0.1:8900/cgi-bin/"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:8080",
                                 "http://[::1]:8080", "https://app.localhost",
                                 "http://127.5.0.1"])
def test_a_loopback_public_url_with_wecom_is_a_problem(url: str) -> None:
    problems: list[str] = []
    assert _public_url(_settings(url, SANDBOX, WECOM), problems.append) is None
    [line] = problems
    assert line.startswith(f"server.public_url {url} is this machine's own address, but "
                           "tenant(s) t1 talk to WeCom")


@pytest.mark.parametrize(("url", "bases"), [
    ("http://127.0.0.1:8080", (SANDBOX,)),  # the sandbox on this machine: fine
    ("https://guide.example.com", (WECOM,)),
    ("http://10.0.0.5:8080", (WECOM,)),  # an intranet address phones may reach
])
def test_other_public_urls_pass(url: str, bases: tuple[str, ...]) -> None:
    problems: list[str] = []
    assert _public_url(_settings(url, *bases), problems.append) == (
        f"server.public_url {url} (the links guides open)")
    assert problems == []


def _server(**fields: str) -> Settings:
    settings = _settings("http://127.0.0.1:8080", SANDBOX)
    return Settings(config_path=settings.config_path, content_library=settings.content_library,
                    server=ServerSettings(**fields),  # type: ignore[arg-type]
                    database_url=settings.database_url, llm=settings.llm,
                    tenants=settings.tenants)


@pytest.mark.parametrize(("fields", "proxied"), [
    ({"host": "127.0.0.1", "public_url": "https://guide.example.com"}, True),
    ({"host": "localhost", "public_url": "https://10.0.0.5"}, True),
    ({"host": "127.0.0.1", "public_url": "https://guide.example.com",
      "client_ip_header": "X-Real-IP"}, False),  # the proxy's header read
    ({"host": "127.0.0.1", "public_url": "http://127.0.0.1:8080"}, False),  # the demo
    ({"host": "0.0.0.0", "public_url": "https://guide.example.com"}, True),  # TLS: a proxy's
    ({"host": "0.0.0.0", "public_url": "http://10.0.0.5:8080"}, False),  # reached directly
])
def test_a_proxy_without_client_ip_header_is_noted(fields: dict[str, str],
                                                   proxied: bool) -> None:
    line, noted = _client_address(_server(**fields))
    assert noted is proxied, line
    assert ("set [server] client_ip_header" in line) is proxied
