"""Numbers in answers against the grounding, and chat content validated with file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guidebot.chat.grounding import junk, leaked, numbers, ungrounded_numbers
from guidebot.chat.routing import yuan
from guidebot.chat.words import found
from guidebot.content.chat import load_chat_content
from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library
from guidebot.llm.prompts import parse_suggestions, rule_lines
from tests.support.stack import library_copy


@pytest.mark.parametrize(("text", "expected"), [
    ("¥1,299.00 元", {"1299"}), ("二百九十九元", {"299"}), ("八五折", {"85"}),
    ("8.5折", {"8.5"}), ("七天无理由", {"7"}), ("满三百减五十元", {"300", "50"}),
    ("１２３元", {"123"}), ("一起逛逛", set()), ("价格：¥799.50", {"799.5"}),
])
def test_numbers_are_normalised(text: str, expected: set[str]) -> None:
    assert numbers(text) == expected


def test_only_grounded_numbers_pass() -> None:
    grounding = "商品：丝绒哑光口红 价格：¥299，库存：36 件"
    assert ungrounded_numbers("这款口红 299 元，还有 36 件", grounding) == set()
    assert ungrounded_numbers("现在二百元就能买到", grounding) == {"200"}
    assert ungrounded_numbers("今天打九折", grounding) == {"9"}
    assert ungrounded_numbers("原价 1,299 元", grounding) == {"1299"}


def test_leaks_and_junk() -> None:
    rules = rule_lines()
    assert rules and leaked("好的：" + rules[0], "GB-x", rules)
    assert leaked("内部 GB-abc", "GB-abc", rules) and not leaked("口红 ¥299", "GB-abc", rules)
    assert junk("", "你好") and junk("Yes it is.", "这个好吗") and not junk("Yes.", "Is it?")
    assert junk("```json {}```", "好吗") and junk("好" * 401, "好吗")


def test_word_lists_and_prices() -> None:
    assert found(["TD"], " td。") == "TD" and found(["TD"], "TD套装多少钱") is None
    assert found(["human"], "talk to a human please") == "human"
    assert found(["human"], "humane") is None and found(["人工"], "转人工！") == "人工"
    assert (yuan(29900), yuan(79950), yuan(5)) == ("¥299", "¥799.50", "¥0.05")
    assert parse_suggestions("1. 甲\n\n2) 乙\n- 丙\n4. 丁") == ["甲", "乙", "丙"]


BAD = {
    "replies/bad.toml": '[[replies]]\nkeywords = ["x"]\nmessage = "no_such_message"\n',
    "faq/bad.toml": '[[entries]]\nid = "a"\nquestion = "q"\n\n[[entries]]\nid = "b"\n'
                    'question = "q"\nanswer = 3\n',
}


def test_invalid_chat_content_names_file_and_line(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "content_library"
    texts = (root / "chat" / "texts.toml").read_text(encoding="utf-8").replace(
        'tasks_none = "', 'tasks_none = "{nobody}')
    catalog = (root / "catalog.toml").read_text(encoding="utf-8").replace(
        "price_fen = 59900", 'price_fen = "599"')
    library = library_copy(tmp_path, {**BAD, "chat/texts.toml": texts, "catalog.toml": catalog})
    with pytest.raises(ContentInvalid) as caught:
        load_chat_content(library, set(load_library(library).messages))
    text_line = next(n for n, line in enumerate(texts.splitlines(), 1)
                     if line.startswith("tasks_none"))
    price_header = next(n for n, line in enumerate(catalog.splitlines(), 1)
                        if 'price_fen = "599"' in line) - 4
    assert sorted(str(p).replace(str(library) + "/", "") for p in caught.value.problems) == [
        f"catalog.toml:{price_header}: products: price_fen must be a whole number of fen ≥ 0",
        f"chat/texts.toml:{text_line}: tasks_none: unknown placeholder {{nobody}}",
        "faq/bad.toml:1: entries: answer is required (a non-empty string)",
        "faq/bad.toml:5: entries: answer is required (a non-empty string)",
        "replies/bad.toml:1: replies: message 'no_such_message' is not in messages/",
    ]


def test_the_shipped_chat_content_loads() -> None:
    root = Path(__file__).resolve().parents[2] / "content_library"
    content = load_chat_content(root, set(load_library(root).messages))
    assert len(content.faqs) >= 8 and len(content.replies) >= 4
    assert {"tasks", "customer", "share", "sales", "scripts", "suggest"} == set(content.commands)
    # the opt-out tag is declared in tags.toml, so guidebot creates it in WeCom
    assert content.opt_out_tag == "已退订"
    assert any(content.opt_out_tag in g.tags for g in load_library(root).tag_groups)


def test_opt_out_toml_is_checked(tmp_path: Path) -> None:
    bad = '# the opt-out tag\ntag = ["已退订"]\nlabel = "x"\n'
    library = library_copy(tmp_path, {"chat/opt_out.toml": bad})
    with pytest.raises(ContentInvalid) as caught:
        load_chat_content(library, set(load_library(library).messages))
    assert sorted(str(p).replace(str(library) + "/", "") for p in caught.value.problems) == [
        "chat/opt_out.toml:2: tag must be a tag name (0-30 characters)",
        "chat/opt_out.toml:3: unknown key 'label'",
    ]
    (library / "chat" / "opt_out.toml").write_text('tag = ""\n', encoding="utf-8")
    assert load_chat_content(library, set(load_library(library).messages)).opt_out_tag == ""


def test_a_texts_file_without_the_later_texts_takes_the_shipped_ones(tmp_path: Path) -> None:
    """A library's own chat/texts.toml from before 删人提醒 still loads: the churn_* texts it
    lacks are the shipped ones; one it has is its own, checked like the rest."""
    root = Path(__file__).resolve().parents[2]
    shipped = load_chat_content(root / "content_library",
                                set(load_library(root / "content_library").messages)).texts
    texts = (root / "content_library" / "chat" / "texts.toml").read_text(encoding="utf-8")
    older = texts.split("\n# --- to the guide when a customer deletes them")[0]
    assert "churn_" not in older
    own = older + '\nchurn_orders = "成交 {count} 笔（{amount}）"\n'
    library = library_copy(tmp_path, {"chat/texts.toml": own})
    content = load_chat_content(library, set(load_library(library).messages))
    assert content.texts["churn_orders"] == "成交 {count} 笔（{amount}）"
    for key in ("churn_notice", "churn_added_unknown", "churn_no_orders"):
        assert content.texts[key] == shipped[key]
    (library / "chat" / "texts.toml").write_text(older + '\nchurn_notice = "{who} 删除了您"\n',
                                                 encoding="utf-8")
    with pytest.raises(ContentInvalid) as caught:
        load_chat_content(library, set(load_library(library).messages))
    line = len(older.splitlines()) + 2
    assert [str(p).replace(str(library) + "/", "") for p in caught.value.problems] == [
        f"chat/texts.toml:{line}: churn_notice: unknown placeholder {{who}}"]


def test_the_morning_digest_texts_are_shipped_identical_and_checked(tmp_path: Path) -> None:
    """导购早报's digest_* texts: the content library's and guidebot's shipped copy are the
    same file; a library's texts.toml from before them takes the shipped ones; a placeholder
    a digest text does not have is an error with its line."""
    root = Path(__file__).resolve().parents[2]
    texts = (root / "content_library" / "chat" / "texts.toml").read_text(encoding="utf-8")
    assert texts == (root / "guidebot" / "templates" / "chat" / "texts.toml").read_text(
        encoding="utf-8")
    older = texts.split("\n# --- the morning digest to each guide")[0]
    assert "digest_" not in older and "digest_header" in texts
    library = library_copy(tmp_path, {"chat/texts.toml": older})
    content = load_chat_content(library, set(load_library(library).messages))
    assert content.text("digest_orders", count=2, amount="¥26.05") == "· 昨天成交 2 笔，共 ¥26.05"
    broken = texts.replace('digest_added = "· 昨天新增客户 {count} 位"',
                           'digest_added = "· 昨天新增客户 {count} 位 {guide}"')
    assert broken != texts
    line = broken[:broken.index("digest_added")].count("\n") + 1
    assert _refused_texts(library, broken) == [
        f"chat/texts.toml:{line}: digest_added: unknown placeholder {{guide}}"]


def _refused_texts(library: Path, texts: str) -> list[str]:
    """The problems, with their file and line, of the library with `texts` as its
    chat/texts.toml (which must not load)."""
    (library / "chat" / "texts.toml").write_text(texts, encoding="utf-8")
    with pytest.raises(ContentInvalid) as caught:
        load_chat_content(library, set(load_library(library).messages))
    return [str(p).replace(str(library) + "/", "") for p in caught.value.problems]


def test_the_more_texts_take_how_many_more(tmp_path: Path) -> None:
    """transfer_more and digest_titles_more say how many were not named with {n}; a library's
    own "等" without it still loads (the count is then not said); any other placeholder
    is an error with its line."""
    root = Path(__file__).resolve().parents[2]
    texts = (root / "content_library" / "chat" / "texts.toml").read_text(encoding="utf-8")
    library = library_copy(tmp_path, {})
    content = load_chat_content(library, set(load_library(library).messages))
    assert content.text("transfer_more", n=5) == "……还有 5 位"
    assert content.text("digest_titles_more", n=2) == "……还有 2 个"
    plain = re.sub(r'(?m)^(transfer_more|digest_titles_more) = .*$', r'\1 = "等"', texts)
    (library / "chat" / "texts.toml").write_text(plain, encoding="utf-8")
    content = load_chat_content(library, set(load_library(library).messages))
    assert content.text("transfer_more", n=5) == "等"
    broken = re.sub(r'(?m)^transfer_more = .*$', 'transfer_more = "等 {count} 位"', texts)
    line = broken[:broken.index("transfer_more =")].count("\n") + 1
    assert _refused_texts(library, broken) == [
        f"chat/texts.toml:{line}: transfer_more: unknown placeholder {{count}}"]
