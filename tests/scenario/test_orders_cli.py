"""`guidebot orders import` and `guidebot commissions statement|settle` on a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from guidebot.cli import main
from guidebot.commerce.links import LinkRequest
from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade
from guidebot.services import build_services
from guidebot.settings import load_settings
from tests.support.stack import write_config

DATA = Path(__file__).resolve().parents[1] / "data" / "commerce"
RATES = 'rates = { "category:beauty" = "0.05", "sku:SKU-LIPSTICK-01" = "0.08" }'


@pytest.fixture
def config(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    upgrade(db_url)
    path = write_config(tmp_path, db_url)
    path.write_text(path.read_text(encoding="utf-8")
                    + f'\n[tenants.acme.commission]\n{RATES}\n', encoding="utf-8")
    monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
    return path


async def _link(config: Path) -> str:
    settings = load_settings(config)
    db = Database(settings.database_url)
    services = build_services(settings, db)
    try:
        link = await services.commerce.links.create(settings.tenant("acme"),
                                                    LinkRequest(guide="lina", title="t"))
    finally:
        await services.close()
        await db.dispose()
    return str(link["token"])


def test_import_then_statement_csv(config: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    token = asyncio.run(_link(config))
    orders = tmp_path / "orders.csv"
    orders.write_text((DATA / "orders.csv").read_text(encoding="utf-8").replace("{token}", token),
                      encoding="utf-8")
    assert main(["orders", "import", "--config", str(config), "--tenant", "acme",
                 str(orders)]) == 0
    out = capsys.readouterr()
    assert "imported: applied 1, recorded 3" in out.out
    assert "4/4" in out.err
    assert main(["orders", "import", "--config", str(config), "--tenant", "acme",
                 str(orders)]) == 0
    assert "imported: duplicate 4" in capsys.readouterr().out
    target = tmp_path / "statement.csv"
    period = _current_period()
    assert main(["commissions", "statement", "--config", str(config), "--tenant", "acme",
                 "--period", period, "--csv", str(target)]) == 0
    # CSV-1: 29900×0.08 + 89900×0.03 = 2392 + 2697; CSV-3: 59900×0.05 = 2995;
    # refund 40000 of the scarf claws back 40000×0.03 = 1200. CSV-2 goes to store S02.
    assert target.read_text(encoding="utf-8").splitlines() == [
        "period,guide,earned_fen,clawback_fen,adjustment_fen,net_fen,orders",
        f"{period},lina,8084,1200,0,6884,2"]
    assert main(["commissions", "settle", "--config", str(config), "--tenant", "acme",
                 "--period", period]) == 0
    assert "net 6884 fen" in capsys.readouterr().out
    assert main(["commissions", "settle", "--config", str(config), "--tenant", "acme",
                 "--period", period]) == 2


def test_import_reports_every_bad_row_and_imports_nothing(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["orders", "import", "--config", str(config), "--tenant", "acme",
                 str(DATA / "orders_bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "row 2: paid_at: must include a UTC offset" in err
    assert "row 3: amount_fen: must be an integer" in err
    assert "row 4: items[0].sku: is required" in err
    assert main(["commissions", "statement", "--config", str(config), "--tenant", "acme",
                 "--period", _current_period()]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "period,guide,earned_fen,clawback_fen,adjustment_fen,net_fen,orders"]
    assert main(["orders", "import", "--config", str(config), "--tenant", "nosuch",
                 str(DATA / "orders_bad.csv")]) == 2


def _current_period() -> str:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")


