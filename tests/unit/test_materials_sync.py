"""HQ's library materials brought into a tenant: new files approved with their grade, an
edited file a new version (the first kept), an unchanged one left alone; guides' materials
are never touched by a sync."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from guidebot.content.materials import Content
from guidebot.db.engine import Database
from tests.support.materials_service import Clock, material_service, material_setup
from tests.support.stack import ROOT

__all__ = ["material_setup"]  # the fixture


async def test_sync_versions_edited_files(material_setup: Any, tmp_path: Path) -> None:
    settings, url = material_setup
    library = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", library)
    db = Database(url)
    service = material_service(settings, db, Clock(), library)
    assert await service.sync_library("acme") == 1
    assert await service.sync_library("acme") == 0  # unchanged
    first = await service.get("acme", "scarf_oat_styling")
    assert (first.status, first.grade, first.version) == ("approved", "A", 1)

    path = library / "materials" / "scarf_oat_styling.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("三种系法", "四种系法"),
                    encoding="utf-8")
    edited = material_service(settings, db, Clock(), library)  # a restart reads the edited file
    assert await edited.sync_library("acme") == 1
    now = await edited.get("acme", "scarf_oat_styling")
    assert (now.title, now.version, now.status) == ("燕麦色围巾的四种系法", 2, "approved")
    versions = await edited.versions("acme", "scarf_oat_styling")
    assert [(v["version"], v["title"]) for v in versions] == [
        (1, "燕麦色围巾的三种系法"), (2, "燕麦色围巾的四种系法")]
    assert await edited.find("beta", "scarf_oat_styling") is None  # per tenant

    await edited.create("acme", Content(text="导购的"), source="guide", contributor="lina",
                        material_id="scarf_guide")
    assert await edited.sync_library("acme") == 0

    await edited.withdraw("acme", "scarf_oat_styling", "hq")  # HQ took it out of use
    path.write_text(path.read_text(encoding="utf-8").replace("四种系法", "五种系法"),
                    encoding="utf-8")
    restarted = material_service(settings, db, Clock(), library)
    assert await restarted.sync_library("acme") == 0  # a withdrawn one stays as it was
    gone = await restarted.get("acme", "scarf_oat_styling")
    assert (gone.status, gone.version) == ("withdrawn", 2)
    await db.dispose()
