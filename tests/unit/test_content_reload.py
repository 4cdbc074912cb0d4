"""Hot reload of content_library: settle, swap in place (the chat content too), reject with
file:line, recover."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from guidebot.content import files
from guidebot.content.catalog import load_catalog
from guidebot.content.files import catalog_files, chat_files, content_digest
from guidebot.content.library import load_library
from guidebot.content.materials import SHIPPED_TEXTS, load_materials
from guidebot.content.reload import library_is_newest, problems_json, reload_library
from tests.support.chat import build_router, routers_closed  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def test_a_valid_edit_settles_then_replaces_the_content_in_place(root: Path) -> None:
    library = load_library(root)
    messages_before = library.messages
    assert (await reload_library(library)).status == "unchanged"
    (root / "messages" / "welcome_default.toml").write_text('text = "热更新"\n',
                                                            encoding="utf-8")
    assert (await reload_library(library)).status == "settling"
    assert library.messages is messages_before  # seen once: not yet
    outcome = await reload_library(library)
    assert outcome.replaced and not outcome.tags_changed
    assert library.messages["welcome_default"].text.startswith("热更新")
    assert await library_is_newest(library)
    _edit(root / "tags.toml", '"沉睡客"]', '"沉睡客", "高净值"]')
    assert (await reload_library(library, settle=False)).tags_changed
    assert any("高净值" in g.tags for g in library.tag_groups)


async def test_an_invalid_edit_is_rejected_once_and_cleared_when_undone(
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    library = load_library(root)
    sop_file = root / "sops" / "dormant_winback.toml"
    original = sop_file.read_text(encoding="utf-8")
    _edit(sop_file, 'on_quota = "skip"', 'on_quota = "skip"\nsnooze = true')
    assert not await library_is_newest(library)  # changed on disk, not reloaded yet
    with caplog.at_level(logging.ERROR, logger="guidebot.content.reload"):
        assert (await reload_library(library, settle=False)).status == "rejected"
        assert (await reload_library(library, settle=False)).status == "rejected"
    rejected = [r.getMessage() for r in caplog.records if "rejected:" in r.getMessage()]
    assert rejected == ["content_library edit rejected: sops/dormant_winback.toml:7: "
                        "unknown key 'snooze'"]  # logged once, not every look
    assert problems_json(library) == [{"file": "sops/dormant_winback.toml", "line": 7,
                                       "message": "unknown key 'snooze'"}]
    assert library.sops["dormant_winback"].on_quota == "skip"  # still in force
    assert await library_is_newest(library)  # the rejected files are not newer content
    sop_file.write_text(original, encoding="utf-8")
    assert (await reload_library(library)).status == "unchanged"
    assert problems_json(library) == [] and library.rejected is None


def test_every_chat_file_is_part_of_the_digest(root: Path) -> None:
    files = chat_files(root)
    assert {p.relative_to(root).parts[0] for p in files} == {"replies", "faq", "chat"}
    assert len([p for p in files if p.parent.name == "chat"]) == 5
    for path in files:
        before = content_digest(root)
        path.write_text(path.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
        assert content_digest(root) != before, path


@pytest.mark.usefixtures("routers_closed")
async def test_chat_content_is_swapped_in_place_with_the_library(root: Path) -> None:
    router = build_router(library=root)
    library, content = router.library, router.content
    assert router.faq_match("可以用支付宝付款吗") is None
    faq = root / "faq" / "shipping.toml"
    faq.write_text(faq.read_text(encoding="utf-8") + '\n[[entries]]\nid = "alipay"\n'
                   'question = "可以用支付宝付款吗？"\nanswer = "可以，小程序支持支付宝。"\n',
                   encoding="utf-8")
    _edit(root / "chat" / "texts.toml", 'opt_out_confirm = "', 'opt_out_confirm = "（新）')
    outcome = await reload_library(library, chat=content, settle=False)
    assert outcome.replaced and router.content is content and router.library is library
    assert content.text("opt_out_confirm").startswith("（新）")
    match = router.faq_match("可以用支付宝付款吗")  # found by the rebuilt BM25 index alone
    assert match is not None and match.answer == "可以，小程序支持支付宝。"


@pytest.mark.usefixtures("routers_closed")
async def test_an_invalid_chat_edit_is_rejected_and_the_content_in_force_stays(
        root: Path) -> None:
    router = build_router(library=root)
    library, content = router.library, router.content
    rules, generation = content.watch, content.generation
    _edit(root / "chat" / "watch_words.toml", 'level = "warn"', 'level = "loud"')
    assert (await reload_library(library, chat=content, settle=False)).status == "rejected"
    message = """rules: level must be "warn" or "alert", got 'loud'"""
    assert problems_json(library) == [  # each rule's [[rules]] line
        {"file": "chat/watch_words.toml", "line": line, "message": message} for line in (13, 31)]
    assert (content.watch, content.generation) == (rules, generation)


def test_every_catalog_and_material_file_is_part_of_the_digest(root: Path) -> None:
    files = catalog_files(root)
    assert {p.relative_to(root).as_posix() for p in files} >= {
        "catalog.toml", "materials/scarf_oat_styling.toml", "sensitive_words.txt"}
    for path in files:
        before = content_digest(root)
        path.write_text(path.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
        assert content_digest(root) != before, path
    before = content_digest(root)
    (root / "material_texts.toml").write_text(SHIPPED_TEXTS.read_text(encoding="utf-8"),
                                              encoding="utf-8")
    assert content_digest(root) != before  # a library's own material texts, added


NEW_SKU = '\n[[products]]\nsku = "SKU-NEW-09"\nname = "新品香水"\ncategory = "fragrance"\n'


async def test_a_file_naming_a_sku_only_an_invalid_new_catalog_has_waits_for_it(
        root: Path) -> None:
    """Each part is validated on its own, and the library (auto_tags.toml, materials' cards)
    against the catalog in force after the look: a bad catalog keeps the old one, and a rule
    naming a sku only the bad catalog adds is refused with its own file:line until the
    catalog is fixed; then both apply."""
    library, catalog = load_library(root), load_catalog(root)
    catalog_file = root / "catalog.toml"
    good = catalog_file.read_text(encoding="utf-8") + NEW_SKU + "price_fen = 9900\n"
    catalog_file.write_text(good.replace("price_fen = 9900", "price_fen = -1"),
                            encoding="utf-8")
    _edit(root / "auto_tags.toml", 'skus = ["SKU-SERUM-02"]',
          'skus = ["SKU-SERUM-02", "SKU-NEW-09"]')
    _edit(root / "messages" / "welcome_default.toml", 'text = """', 'text = """（新）')
    outcome = await reload_library(library, catalog=catalog, settle=False)
    assert outcome.status == "rejected" and outcome.parts == frozenset()
    products = catalog_file.read_text(encoding="utf-8").splitlines()
    assert problems_json(library) == [
        {"file": "catalog.toml", "line": len(products) - 4,
         "message": "products: price_fen must be a whole number of fen ≥ 0"},
        {"file": "auto_tags.toml", "line": 15,
         "message": "on_open: sku 'SKU-NEW-09' is not in catalog.toml"}]
    assert "SKU-NEW-09" not in catalog.products
    assert not library.messages["welcome_default"].text.startswith("（新）")  # the library's
    assert (await reload_library(library, catalog=catalog, settle=False)).status == "rejected"

    catalog_file.write_text(good, encoding="utf-8")  # HQ fixes the price: all of it applies
    outcome = await reload_library(library, catalog=catalog, settle=False)
    assert outcome.parts == {"library", "catalog"} and problems_json(library) == []
    assert catalog.products["SKU-NEW-09"].price_fen == 9900
    assert any("SKU-NEW-09" in rule.skus for rule in library.auto_tags.on_open)
    assert library.messages["welcome_default"].text.startswith("（新）")


@pytest.mark.usefixtures("routers_closed")
async def test_a_bad_chat_edit_keeps_the_chat_content_and_a_catalog_edit_still_applies(
        root: Path) -> None:
    router = build_router(library=root)
    library, content, catalog = router.library, router.content, router.catalog
    _edit(root / "chat" / "watch_words.toml", 'level = "warn"', 'level = "loud"')
    _edit(root / "catalog.toml", "price_fen = 29900", "price_fen = 25900")
    outcome = await reload_library(library, chat=content, catalog=catalog, settle=False)
    assert outcome.parts == {"catalog"}
    assert {p["file"] for p in problems_json(library)} == {"chat/watch_words.toml"}
    assert catalog.products["SKU-LIPSTICK-01"].price_fen == 25900
    assert (await reload_library(library, chat=content, catalog=catalog,
                                 settle=False)).status == "rejected"  # looked at once

    # the price edit undone (the chat file still bad): the old price is back in force
    _edit(root / "catalog.toml", "price_fen = 25900", "price_fen = 29900")
    outcome = await reload_library(library, chat=content, catalog=catalog, settle=False)
    assert outcome.parts == {"catalog"}
    assert catalog.products["SKU-LIPSTICK-01"].price_fen == 29900


def _replace_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Another file under the same name, of the same size and modification time (as `cp -p`
    or an unpacked archive leaves it)."""
    stat = path.stat()
    assert len(data) == stat.st_size
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _other_png(path: Path) -> bytes:
    data = path.read_bytes()
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def test_every_named_picture_and_video_is_part_of_the_digest(root: Path) -> None:
    before = content_digest(root)
    (root / "media" / "unnamed.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    os.utime(root / "media" / "kf_card.png")  # touched: the same content
    assert content_digest(root) == before  # a file nothing names, a touch: no edit
    # a card's picture, a material's picture
    for name in ("media/kf_card.png", "materials/pictures/scarf_oat.png"):
        path = root / name
        before = content_digest(root)
        _replace_keeping_size_and_mtime(path, _other_png(path))
        assert content_digest(root) != before, name
    (root / "media" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(16))
    scarf = root / "materials" / "scarf_oat_styling.toml"
    _edit(scarf, 'pictures = ["materials/pictures/scarf_oat.png"]', 'video = "media/clip.mp4"')
    before = content_digest(root)
    _replace_keeping_size_and_mtime(root / "media" / "clip.mp4",
                                    b"\x00\x00\x00\x18ftypisom" + bytes(16))
    assert content_digest(root) != before  # a material's video
    before = content_digest(root)
    (root / "media" / "clip.mp4").unlink()
    assert content_digest(root) != before  # removed


async def test_a_replaced_picture_is_reloaded_and_a_broken_one_refused_with_file_line(
        root: Path) -> None:
    library, materials = load_library(root), load_materials(root)
    picture = root / "materials" / "pictures" / "scarf_oat.png"
    good = _other_png(picture)
    _replace_keeping_size_and_mtime(picture, b"GIF89a" + bytes(len(good) - 6))
    assert (await reload_library(library, materials=materials)).status == "settling"
    # the materials part is refused (the library, valid with the materials in force, applies)
    assert (await reload_library(library, materials=materials)).parts == {"library"}
    assert materials.materials["scarf_oat_styling"].content.pictures == (
        "materials/pictures/scarf_oat.png",)
    line = (root / "materials" / "scarf_oat_styling.toml").read_text(
        encoding="utf-8").splitlines().index('pictures = ["materials/pictures/scarf_oat.png"]')
    assert problems_json(library) == [{
        "file": "materials/scarf_oat_styling.toml", "line": line + 1,
        "message": "pictures: 'materials/pictures/scarf_oat.png' is not a JPG or PNG"}]
    assert (await reload_library(library, materials=materials)).status == "rejected"

    picture.write_bytes(good)  # HQ puts a good picture there: noticed, the problem clears
    outcome = await reload_library(library, materials=materials, settle=False)
    assert outcome.parts == {"library"} and problems_json(library) == []
    assert (await reload_library(library, materials=materials)).status == "unchanged"
    assert await library_is_newest(library)


def test_a_picture_hashed_long_after_its_change_is_hashed_again_once_replaced(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its mark is trusted (one stat, no read) until the file is replaced: then the change
    time moves even when the size and modification time are the old ones."""
    monkeypatch.setattr(files, "RACY_NS", -10**18)  # every hash is long after its change
    path = root / "media" / "kf_card.png"
    first = files.file_digest(path)
    assert files.cached_file_digest(path) == first
    _replace_keeping_size_and_mtime(path, _other_png(path))
    assert files.cached_file_digest(path) is None
    assert files.file_digest(path) not in (first, None)
    monkeypatch.setattr(files, "RACY_NS", 10**18)  # hashed just after a change: not trusted
    path.write_bytes(path.read_bytes() + b"\0")
    files.file_digest(path)
    assert files.cached_file_digest(path) is None


async def test_a_catalog_edit_dropping_a_materials_sku_applies_and_the_material_is_listed(
        root: Path) -> None:
    library, catalog, materials = load_library(root), load_catalog(root), load_materials(root)
    catalog_file = root / "catalog.toml"
    products = catalog_file.read_text(encoding="utf-8").split("\n[[products]]\n")
    catalog_file.write_text("\n[[products]]\n".join(
        p for p in products if 'sku = "SKU-SCARF-03"' not in p), encoding="utf-8")
    outcome = await reload_library(library, catalog=catalog, materials=materials, settle=False)
    assert "catalog" in outcome.parts and "SKU-SCARF-03" not in catalog.products
    material = root / "materials" / "scarf_oat_styling.toml"
    line = material.read_text(encoding="utf-8").splitlines().index(
        'skus = ["SKU-SCARF-03"]') + 1
    assert problems_json(library) == [{"file": "materials/scarf_oat_styling.toml",
                                       "line": line,
                                       "message": "skus: 'SKU-SCARF-03' is not in catalog.toml"}]
    assert materials.materials["scarf_oat_styling"].content.skus == ("SKU-SCARF-03",)
