"""content_library/materials/*.toml, sensitive_words.txt and material_texts.toml: every problem
with its file and line; the materials config; which words flag a text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.materials import SHIPPED_TEXTS, load_materials
from guidebot.errors import ConfigError
from guidebot.settings import load_settings
from tests.unit.test_settings import GOOD, _write

ROOT = Path(__file__).resolve().parents[2]


def _library(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    root = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", root)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def test_shipped_materials_are_valid() -> None:
    library = load_materials(ROOT / "content_library")
    scarf = library.materials["scarf_oat_styling"]
    assert scarf.grade == "A" and scarf.content.skus == ("SKU-SCARF-03",)
    assert scarf.content.pictures == ("materials/pictures/scarf_oat.png",)
    assert library.texts.command("素材 围巾") == ("search", "围巾")


def test_every_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    root = _library(tmp_path, {
        "materials/a.toml": 'title = "a"\ntext = "x"\ncolour = "red"\ngrade = "D"\n',
        "materials/b.toml": 'text = "' + "长" * 2001 + '"\n',
        "materials/c.toml": 'text = "c"\npictures = ["materials/nope.jpg"]\n',
        "materials/d.toml": 'text = "d"\npictures = ["materials/fake.png"]\n',
        "materials/fake.png": b"GIF89a-not-a-png",
        "materials/e.toml": ('text = "e"\npictures = ["materials/pictures/scarf_oat.png"]\n'
                             '[link]\ntitle = "t"\nurl = "https://example.com"\n'),
        "materials/f.toml": "text = \n",
        "materials/Bad Name.toml": 'text = "x"\n',
        "sensitive_words.txt": "# comment\n最低价\n\n最低价\n" + "长" * 40 + "\n",
    })
    with pytest.raises(ContentInvalid) as info:
        load_materials(root)
    lines = [str(p) for p in info.value.problems]

    def has(where: str, text: str) -> bool:
        return any(where in x and text in x for x in lines)

    assert has("a.toml:3", "unknown key 'colour'") and has("a.toml:4", "grade")
    assert has("b.toml:1", "at most 2000 characters")
    assert has("c.toml:2", "no such file")
    assert has("d.toml:2", "is not a JPG or PNG")
    assert has("e.toml", "exclude each other")
    assert has("f.toml:1", "not valid TOML")
    assert has("Bad Name.toml", "file name")
    assert has("sensitive_words.txt:4", "listed twice")
    assert has("sensitive_words.txt:5", "at most 32")


def test_texts_must_be_complete_and_use_known_placeholders(tmp_path: Path) -> None:
    text = SHIPPED_TEXTS.read_text(encoding="utf-8")
    root = _library(tmp_path, {"material_texts.toml": text.replace("{reason}", "{why}")
                               .replace('search = ["素材"]', "")})
    with pytest.raises(ContentInvalid) as info:
        load_materials(root)
    lines = [str(p) for p in info.value.problems]
    assert any("texts.rejected: unknown placeholder {why}" in x for x in lines)
    assert any("commands.search" in x for x in lines)


def test_sensitive_words_are_found_case_insensitively() -> None:
    words = load_materials(ROOT / "content_library").words
    assert words.found("这是全网最低价，快加微信") == ["全网最低", "加微信"]
    assert words.found("普通的文案") == []


def test_materials_config(tmp_path: Path) -> None:
    extra = ('\n[tenants.acme.materials]\npoints = { S = 20, C = 0 }\n'
             'webhook_url = "https://mall.example.com/points"\nwebhook_secret = "k-123456"\n')
    settings = load_settings(_write(tmp_path, GOOD + extra))
    config = settings.tenant("acme").materials
    assert dict(config.points) == {"S": 20, "A": 5, "B": 2, "C": 0}
    assert config.webhook_url.endswith("/points")
    assert settings.data_dir == tmp_path / "data"
    for bad, key in (('points = { D = 1 }', "points"), ('points = { S = -1 }', "points"),
                     ('webhook_url = "ftp://x"', "webhook_url"),
                     ('webhook_url = "https://x"', "webhook_secret")):
        with pytest.raises(ConfigError) as info:
            load_settings(_write(tmp_path, GOOD + f"\n[tenants.acme.materials]\n{bad}\n"))
        assert info.value.key == f"tenants.acme.materials.{key}"


def test_a_material_naming_a_sku_the_catalog_does_not_have_is_refused(tmp_path: Path) -> None:
    from guidebot.content.errors import Problem
    from guidebot.content.materials import parse_materials

    root = _library(tmp_path, {"materials/coat.toml": 'title = "大衣"\ntext = "大衣上新"\n'
                               'skus = [\n  "SKU-SCARF-03",\n  "SKU-COAT-09",\n]\n'})
    with pytest.raises(ContentInvalid) as info:
        load_materials(root)
    assert info.value.problems == [Problem(root / "materials" / "coat.toml", 3,
                                           "skus: 'SKU-COAT-09' is not in catalog.toml")]
    # against the catalog given (a reload's catalog in force), not the file on disk
    problems: list[Problem] = []
    found = parse_materials(root, problems, skus={"SKU-SCARF-03", "SKU-COAT-09"})
    assert problems == [] and found.materials["coat"].content.skus == ("SKU-SCARF-03",
                                                                       "SKU-COAT-09")
