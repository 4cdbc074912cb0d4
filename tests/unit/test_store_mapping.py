"""content_library/stores.toml: validated with file:line like the other library files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.content.reload import reload_library

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_mapping_maps_the_demo_departments() -> None:
    stores = load_library(ROOT / "content_library").stores
    assert stores.store_for("anyone", 2) is not None
    assert stores.store_for("anyone", 2).id == "S01"  # type: ignore[union-attr]
    assert stores.store_for("anyone", 3).id == "S02"  # type: ignore[union-attr]
    assert stores.store_for("anyone", 4) is None


def test_a_guide_entry_wins_over_the_department(tmp_path: Path) -> None:
    (tmp_path / "stores.toml").write_text(
        '[[stores]]\nid = "A"\nname = "甲店"\ndepartments = [5]\n\n'
        '[[stores]]\nid = "B"\nname = "乙店"\nguides = ["lina"]\n', encoding="utf-8")
    stores = load_library(tmp_path).stores
    assert stores.store_for("lina", 5).id == "B"  # type: ignore[union-attr]
    assert stores.store_for("wang", 5).id == "A"  # type: ignore[union-attr]
    assert stores.maps_department(5) and not stores.maps_department(6)


def test_managers_may_run_several_stores(tmp_path: Path) -> None:
    (tmp_path / "stores.toml").write_text(
        '[[stores]]\nid = "A"\nname = "甲店"\nmanagers = ["duo", "li"]\n\n'
        '[[stores]]\nid = "B"\nname = "乙店"\nmanagers = ["duo"]\n', encoding="utf-8")
    stores = load_library(tmp_path).stores
    assert stores.managed_by("duo") == {"A", "B"} and stores.managed_by("li") == {"A"}
    assert stores.managed_by("lina") == set()
    (tmp_path / "stores.toml").write_text(
        '[[stores]]\nid = "A"\nname = "甲店"\nmanagers = "duo"\n', encoding="utf-8")
    with pytest.raises(ContentInvalid, match=r"stores.toml:1: store A: managers must be"):
        load_library(tmp_path)


def test_every_problem_names_its_store_table_line(tmp_path: Path) -> None:
    (tmp_path / "stores.toml").write_text(
        '[[stores]]\nid = "A"\nname = "甲店"\ndepartments = [5]\n'
        '\n[[stores]]\nid = "B"\nname = "乙店"\ndepartments = [5, "6"]\ncolour = 1\n'
        '\n[[stores]]\nid = "bad id"\nname = "丙店"\n'
        '\n[[stores]]\nid = "D"\nname = ""\nguides = ["-x"]\n', encoding="utf-8")
    with pytest.raises(ContentInvalid) as info:
        load_library(tmp_path)
    lines = [str(p) for p in info.value.problems]
    assert any("stores.toml:6" in x and "unknown key 'colour'" in x for x in lines)
    assert any("stores.toml:6" in x and "positive department ids" in x for x in lines)
    assert any("stores.toml:12" in x and "id: 1-64" in x for x in lines)
    assert any("stores.toml:16" in x and "name must be" in x for x in lines)
    (tmp_path / "stores.toml").write_text(
        '[[stores]]\nid = "A"\nname = "甲"\ndepartments = [5]\n'
        '[[stores]]\nid = "B"\nname = "乙"\ndepartments = [5]\n', encoding="utf-8")
    with pytest.raises(ContentInvalid, match=r"stores.toml:5: department 5 is in stores A and B"):
        load_library(tmp_path)


def test_broken_toml_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "stores.toml").write_text('[[stores]]\nid = "A\n', encoding="utf-8")
    with pytest.raises(ContentInvalid, match=r"stores.toml:2: not valid TOML"):
        load_library(tmp_path)


async def test_an_edited_mapping_replaces_the_one_in_force(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "content_library", tmp_path / "library")
    path = tmp_path / "library" / "stores.toml"
    library = load_library(tmp_path / "library")
    path.write_text(path.read_text(encoding="utf-8").replace("[3]", "[3, 4]"),
                    encoding="utf-8")
    assert (await reload_library(library, settle=False)).replaced
    assert library.stores.store_for("anyone", 4).id == "S02"  # type: ignore[union-attr]
    path.write_text(path.read_text(encoding="utf-8").replace("[3, 4]", "[2]"),
                    encoding="utf-8")
    outcome = await reload_library(library, settle=False)
    assert not outcome.replaced and library.rejected is not None
    assert "department 2 is in stores S01 and S02" in str(library.rejected.problems[0])
    assert library.stores.store_for("anyone", 4).id == "S02"  # type: ignore[union-attr]
