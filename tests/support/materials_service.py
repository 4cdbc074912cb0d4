"""A MaterialService on its own over a real database, telling guides through an in-process
sandbox (approvals tell the contributor), with a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from guidebot.app_quota import AppQuota
from guidebot.content.catalog import Catalog
from guidebot.content.materials import load_materials
from guidebot.db.engine import Database
from guidebot.materials.points import Points
from guidebot.materials.service import MaterialService
from guidebot.materials.storage import PictureStore
from guidebot.outbox import Outbox
from guidebot.sandbox import create_sandbox_app
from guidebot.settings import Settings, load_settings
from guidebot.wecom.client import InMemoryTokenStore, WeComClient
from tests.support.schema import migrate_async
from tests.support.stack import ROOT, write_config


async def _same(tenant: str, guide: str, items: list[dict[str, Any]],
                campaign: str) -> list[dict[str, Any]]:
    return items  # no products and no pictures in these materials: nothing to track


async def _none(tenant: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


def material_service(settings: Settings, db: Database, clock: Callable[[], datetime],
             library: Path = ROOT / "content_library") -> MaterialService:
    """The service on its own, telling guides through the sandbox (approvals do)."""
    clients = {t: WeComClient(s, tokens=InMemoryTokenStore()) for t, s in settings.tenants.items()}
    OPEN.extend(clients.values())
    return MaterialService(settings, db, load_materials(library), Catalog({}),
                           Outbox(db), clients.__getitem__, tracker=_same, pictures=_none,
                           store=PictureStore(settings.data_dir),
                           points=Points(settings, db, clock=clock),
                           quota=AppQuota(db, lambda t: settings.tenant(t).quotas
                                          .app_msg_per_guide_per_min), clock=clock)


OPEN: list[WeComClient] = []


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def material_setup(tmp_path: Path, db_url: str, aiohttp_server):  # type: ignore[no-untyped-def]
    await migrate_async(db_url)
    settings = load_settings(write_config(tmp_path, db_url))
    sandbox = await aiohttp_server(create_sandbox_app(settings))
    base = str(sandbox.make_url("/cgi-bin/"))
    tenants = {t: replace(s, api_base=base) for t, s in settings.tenants.items()}
    yield replace(settings, tenants=tenants), db_url
    while OPEN:
        await OPEN.pop().close()
