"""`guidebot init`: what it writes loads as a valid config and library; it never overwrites."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from guidebot.cli import main
from guidebot.content.catalog import load_catalog
from guidebot.content.library import load_library
from guidebot.errors import ConfigError
from guidebot.settings import load_settings

ENV = {"SHOP_EAST_WECOM_TOKEN": "QDG6eK",
       "SHOP_EAST_WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
       "SHOP_EAST_WECOM_SECRET": "app-secret-value", "SHOP_EAST_ADMIN_TOKEN": "admin-value"}


def test_written_config_and_library_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["init", "--dir", str(tmp_path), "--tenant", "shop-east", "--corp-id",
                 "wwshop01", "--agent-id", "1000005"]) == 0
    assert "SHOP_EAST_WECOM_SECRET" in capsys.readouterr().out
    settings = load_settings(tmp_path / "config.toml")
    tenant = settings.tenant("shop-east")
    assert (tenant.corp_id, tenant.agent_id, tenant.secret) == ("wwshop01", 1000005,
                                                                "app-secret-value")
    assert tenant.api_base == "https://qyapi.weixin.qq.com/cgi-bin/"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'guidebot.db'}"
    library = load_library(settings.content_library)
    assert set(library.messages) == {"welcome_default"}
    assert (library.sops, library.drops) == ({}, {})
    # only the tag the shipped chat/opt_out.toml gives customers who opt out
    assert [(g.name, g.tags) for g in library.tag_groups] == [("消息偏好", ("已退订",))]
    assert load_catalog(settings.content_library).products == {}


def test_the_written_configs_optional_tables_load_once_uncommented(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every commented line of the written config is a working example: uncommented (the
    sandbox api_base included), the file still loads, with those tables applied."""
    for name, value in {**ENV, "SHOP_EAST_ORDER_SECRET": "order-value",
                        "SHOP_EAST_POINTS_SECRET": "points-value",
                        "GUIDEBOT_OPERATOR_TOKEN": "operator-value",
                        "GUIDEBOT_METRICS_TOKEN": "metrics-value"}.items():
        monkeypatch.setenv(name, value)
    assert main(["init", "--dir", str(tmp_path), "--tenant", "shop-east", "--corp-id",
                 "wwshop01", "--agent-id", "1000005"]) == 0
    path = tmp_path / "config.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    examples = [n for n, line in enumerate(lines) if line.startswith("# ")
                and ("=" in line.split("#")[1] or line.startswith("# [tenants."))]
    assert len(examples) >= 10
    for n in examples:
        lines[n] = lines[n][2:].replace("wx…", "wx0123456789abcdef").replace("wk…", "wk01")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(path)
    tenant = settings.tenant("shop-east")
    assert settings.server.operator_token == "operator-value"
    assert settings.server.metrics_token == "metrics-value"
    assert tenant.api_base == "http://127.0.0.1:8900/cgi-bin/"
    assert (tenant.kf.open_kfids, tenant.alerts.customer_deleted) == (("wk01",), True)
    assert (tenant.alerts.card_opened, tenant.alerts.card_opened_window_minutes) == (True, 30)
    assert tenant.alerts.morning_digest == time(9, 0)
    assert tenant.auto_tags.enabled is True
    assert tenant.materials.webhook_secret == "points-value"


def test_without_corp_id_the_config_says_what_to_fill_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["init", "--dir", str(tmp_path), "--tenant", "shop-east"]) == 0
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "config.toml")
    assert info.value.key == "tenants.shop-east.corp_id"


def test_refuses_to_overwrite_and_bad_tenant_ids(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    welcome = tmp_path / "content_library" / "messages" / "welcome_default.toml"
    welcome.parent.mkdir(parents=True)
    welcome.write_text('text = "mine"\n', encoding="utf-8")
    assert main(["init", "--dir", str(tmp_path), "--tenant", "acme"]) == 2
    assert f"not overwriting existing file(s): {welcome}" in capsys.readouterr().err
    assert welcome.read_text("utf-8") == 'text = "mine"\n'
    assert not (tmp_path / "config.toml").exists()
    assert main(["init", "--dir", str(tmp_path / "x"), "--tenant", "Bad Id"]) == 2
    assert "--tenant 'Bad Id'" in capsys.readouterr().err
