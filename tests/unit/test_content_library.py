"""content_library validation: every problem with its file and line; rendering placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.content.render import render

ROOT = Path(__file__).resolve().parents[2]


def _library(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_shipped_library_is_valid() -> None:
    library = load_library(ROOT / "content_library")
    assert {"welcome_default", "welcome_double11"} <= set(library.messages)
    assert any(g.name == "来源渠道" for g in library.tag_groups)


def test_every_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    root = _library(tmp_path, {
        "messages/a.toml": 'text = "你好 {{ customer.phone }}"\ncolour = "red"\n',
        "messages/b.toml": 'text = "hi"\n[[attachments]]\ntype = "video"\n',
        "messages/c.toml": 'text = "{% if %}"\n',
        "messages/d.toml": "text = \n",
        "messages/e.toml": 'text = "hi"\nsidebar = "no"\n',
    })
    with pytest.raises(ContentInvalid) as info:
        load_library(root)
    lines = [str(p) for p in info.value.problems]
    assert any("a.toml:1" in x and "customer.phone" in x for x in lines)
    assert any("a.toml:2" in x and "unknown key 'colour'" in x for x in lines)
    assert any("b.toml:2" in x and "attachment type" in x for x in lines)
    assert any("c.toml:1" in x and "template error" in x for x in lines)
    assert any("d.toml:1" in x and "not valid TOML" in x for x in lines)
    assert any("e.toml:2" in x and "sidebar must be true or false" in x for x in lines)


def test_a_message_can_stay_out_of_the_sidebar(tmp_path: Path) -> None:
    library = load_library(_library(tmp_path, {
        "messages/welcome_default.toml": 'text = "您好"\n',
        "messages/bot.toml": 'sidebar = false\ntext = "我是小助手"\n'}))
    assert library.messages["welcome_default"].sidebar is True  # by default
    assert library.messages["bot"].sidebar is False
    shipped = load_library(ROOT / "content_library").messages
    assert not shipped["kf_handoff"].sidebar and not shipped["reply_greeting"].sidebar


def test_render_fills_known_placeholders_and_blanks_unknown_values() -> None:
    text = "{% if customer.name %}{{ customer.name }}，{% endif %}我是{{ guide.name }}"
    values = {"customer": {"name": "周婷"}, "guide": {"name": "李娜"}}
    assert render(text, values) == "周婷，我是李娜"
    assert render(text, {"guide": {"name": "李娜"}}) == "我是李娜"


def test_sandboxed_templates_cannot_reach_python() -> None:
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        render("{{ customer.name.__class__.__mro__ }}", {"customer": {"name": "x"}})


def test_picture_files_are_checked_where_the_message_names_them(tmp_path: Path) -> None:
    card = ('text = "hi"\n[[attachments]]\ntype = "miniprogram"\ntitle = "t"\n'
            'page = "pages/a.html"\n')
    root = _library(tmp_path / "lib", {
        "messages/ok.toml": card + 'pic_file = "media/ok.png"\n',
        "messages/outside.toml": card + 'pic_file = "../secret.png"\n',
        "messages/missing.toml": card + 'pic_file = "media/none.png"\n',
        "messages/text.toml": card + 'pic_file = "media/notes.txt"\n',
        "messages/both.toml": card + 'pic_file = "media/ok.png"\npic_media_id = "m1"\n',
        "messages/huge.toml": 'text = "hi"\n[[attachments]]\ntype = "image"\n'
                              'file = "media/huge.jpg"\n',
        "media/notes.txt": "not a picture at all",
    })
    (root / "media" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    (root / "media" / "huge.jpg").write_bytes(b"\xff\xd8\xff" + bytes(10 * 1024 * 1024))
    (tmp_path / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    with pytest.raises(ContentInvalid) as info:
        load_library(root)
    found = {str(p).split("/messages/")[1].split(":")[0]: str(p) for p in info.value.problems}
    assert set(found) == {"outside.toml", "missing.toml", "text.toml", "both.toml", "huge.toml"}
    assert "inside content_library" in found["outside.toml"]
    assert "no such file" in found["missing.toml"]
    assert "not a JPG or PNG" in found["text.toml"]
    assert "exclude each other" in found["both.toml"]
    assert "6 B to 10 MB" in found["huge.toml"]
    assert all(":6" in found[n] for n in ("outside.toml", "missing.toml", "text.toml"))

    for name in ("outside", "missing", "text", "both", "huge"):
        (root / "messages" / f"{name}.toml").unlink()
    library = load_library(root)
    assert library.messages["ok"].attachments[0]["pic_file"] == "media/ok.png"


def test_group_welcome_templates_are_checked_against_their_messages(tmp_path: Path) -> None:
    link = '[[attachments]]\ntype = "link"\ntitle = "{title}"\nurl = "https://e.com"\n'
    root = _library(tmp_path, {
        "messages/ok.toml": 'text = "欢迎 %NICKNAME%"\n' + link.format(title="会员权益"),
        "messages/guide.toml": 'text = "我是{{ guide.name }}"\n',
        "messages/two.toml": 'text = "hi"\n' + link.format(title="a") + link.format(title="b"),
        "messages/long.toml": 'text = "hi"\n' + link.format(title="长" * 43),
        "group_welcome.toml": (
            '[[templates]]\nid = "ok"\nmessage = "ok"\n'
            '[[templates]]\nid = "guide"\nmessage = "guide"\n'
            '[[templates]]\nid = "two"\nmessage = "two"\n'
            '[[templates]]\nid = "long"\nmessage = "long"\nnotify = "yes"\n'
            '[[templates]]\nid = "Bad Id"\nmessage = "nosuch"\n'
            '[[templates]]\nid = "ok"\nmessage = "ok"\n'),
    })
    with pytest.raises(ContentInvalid) as info:
        load_library(root)
    found = [str(p).replace(str(root) + "/", "") for p in info.value.problems]
    assert found == [
        "group_welcome.toml:6: message 'guide': a group welcome cannot use guidebot "
        "placeholders (WeCom sends it to whoever joins; use %NICKNAME% for their name)",
        "group_welcome.toml:9: message 'two': at most one attachment (WeCom uses one)",
        "group_welcome.toml:11: notify must be true or false",  # the template's id line
        "group_welcome.toml:12: message 'long': link title over 128 bytes",
        "group_welcome.toml:15: id: lowercase letters, digits, - and _ (up to 48)",
        "group_welcome.toml:16: message 'nosuch': no such message in messages/",
        "group_welcome.toml:18: template 'ok' twice",
    ], found
    shipped = load_library(ROOT / "content_library")
    assert [(t.id, t.message, t.notify) for t in shipped.group_welcome] == [
        ("member", "group_welcome_member", True)]


CATALOG = '[[products]]\nsku = "SKU-A"\nname = "精华"\ncategory = "skincare"\n'
CARDS = '''text = "看看这款"

[[attachments]]
type = "miniprogram"
title = "精华"
page = "pages/goods/detail.html?id=1"
sku = "SKU-A"

[[attachments]]
type = "miniprogram"
title = "面霜"
page = "pages/goods/detail.html?id=2"
sku = "SKU-GONE"
'''


def test_a_card_naming_a_sku_the_catalog_does_not_have_is_refused_with_its_line(
        tmp_path: Path) -> None:
    root = _library(tmp_path, {"messages/welcome_default.toml": 'text = "您好"\n',
                               "messages/cards.toml": CARDS, "catalog.toml": CATALOG})
    with pytest.raises(ContentInvalid) as info:
        load_library(root)
    assert [str(p) for p in info.value.problems] == [
        f"{root / 'messages' / 'cards.toml'}:13: miniprogram attachment: sku 'SKU-GONE' is "
        "not in catalog.toml"]
    # named by the catalog: it loads; a card without a sku (untracked) needs none
    (root / "catalog.toml").write_text(CATALOG + CATALOG.replace("SKU-A", "SKU-GONE"),
                                       encoding="utf-8")
    assert load_library(root).messages["cards"].attachments[1]["sku"] == "SKU-GONE"
    (root / "catalog.toml").unlink()
    (root / "messages" / "cards.toml").write_text(
        "\n".join(line for line in CARDS.splitlines() if not line.startswith("sku")),
        encoding="utf-8")
    assert len(load_library(root).messages["cards"].attachments) == 2


def test_guidebot_check_names_an_unknown_sku_of_a_message_and_of_a_material(
        tmp_path: Path) -> None:
    import shutil

    from guidebot.check import _library as check_library
    from guidebot.settings import load_settings
    from tests.support.stack import write_config

    root = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", root)
    (root / "messages" / "cards.toml").write_text(CARDS.replace("SKU-A", "SKU-SERUM-02"),
                                                  encoding="utf-8")
    scarf = root / "materials" / "scarf_oat_styling.toml"
    scarf.write_text(scarf.read_text(encoding="utf-8").replace(
        'skus = ["SKU-SCARF-03"]', 'skus = ["SKU-SCARF-03", "SKU-SCARF-99"]'), encoding="utf-8")
    line = scarf.read_text(encoding="utf-8").splitlines().index(
        'skus = ["SKU-SCARF-03", "SKU-SCARF-99"]') + 1
    settings = load_settings(write_config(tmp_path, "sqlite+aiosqlite:///x.db", root))
    seen: list[str] = []
    assert check_library(settings, seen.append) is None
    assert sorted(seen) == sorted([
        f"{root / 'messages' / 'cards.toml'}:13: miniprogram attachment: sku 'SKU-GONE' is "
        "not in catalog.toml",
        f"{scarf}:{line}: skus: 'SKU-SCARF-99' is not in catalog.toml"])
