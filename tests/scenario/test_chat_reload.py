"""Hot reload of the chat content over HTTP: an edited FAQ answer or keyword reply is what a
微信客服 customer gets after the reload job, without a restart; a broken chat file is refused
with file:line in the API and the answer in force stays."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from guidebot import jobs
from tests.support.library_edits import answer as _answer
from tests.support.library_edits import edit as _edit
from tests.support.library_edits import library_errors as _library_errors
from tests.support.library_edits import library_stack_fixture  # noqa: F401  (the fixture)
from tests.support.library_edits import reload as _reload
from tests.support.stack import Stack

FEE = "小程序订单满 199 元包邮，不满 199 元运费 10 元。"  # faq/shipping.toml, shipping_fee
NEW_FEE = "小程序订单满 99 元包邮（热更新），不满 99 元运费 8 元。"
HOURS = "我们的门店营业时间是每天 10:00–22:00，节假日照常营业。"  # reply_store_hours


async def test_an_edited_faq_answer_and_keyword_reply_apply_without_a_restart(
        library_stack: tuple[Stack, Path], caplog: pytest.LogCaptureFixture) -> None:
    stack, library = library_stack
    assert await _answer(stack, "wmRELOADkf01", "包邮吗？") == ([FEE], "faq:faq:shipping_fee")
    before = await _answer(stack, "wmRELOADkf02", "周末开门吗")
    assert before[1].startswith("handoff:") and HOURS not in before[0]

    # HQ edits an FAQ answer and gives the store hours reply another keyword
    _edit(library / "faq" / "shipping.toml", FEE, NEW_FEE)
    _edit(library / "replies" / "basics.toml", '"营业到几点"]', '"营业到几点", "周末开门"]')
    await jobs.run_library_reload(stack.runtime.services)
    # seen once: it may still be being written, the answer in force stays
    assert (await _answer(stack, "wmRELOADkf03", "包邮吗？"))[0] == [FEE]
    await jobs.run_library_reload(stack.runtime.services)
    assert await _library_errors(stack) == []
    assert await _answer(stack, "wmRELOADkf04", "包邮吗？") == ([NEW_FEE],
                                                                "faq:faq:shipping_fee")
    assert await _answer(stack, "wmRELOADkf05", "周末开门吗") == (
        [HOURS], "reply:reply:store_hours")

    # an invalid edit: logged with file:line, shown in the API, the answer in force stays
    shipping = library / "faq" / "shipping.toml"
    lines = shipping.read_text(encoding="utf-8").splitlines()
    broken = len(lines) + 1
    shipping.write_text("\n".join([*lines, 'answer = "没有结尾的引号']) + "\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="guidebot.content.reload"):
        await _reload(stack)
    errors = await _library_errors(stack)
    assert [(e["file"], e["line"]) for e in errors] == [("faq/shipping.toml", broken)]
    assert errors[0]["message"].startswith("not valid TOML")
    assert any(f"faq/shipping.toml:{broken}: not valid TOML" in r.getMessage()
               for r in caplog.records)
    assert await _answer(stack, "wmRELOADkf06", "包邮吗？") == ([NEW_FEE],
                                                                "faq:faq:shipping_fee")

    # HQ fixes the file: the problem clears and the fixed answer applies
    shipping.write_text("\n".join(lines).replace(NEW_FEE, FEE) + "\n", encoding="utf-8")
    await _reload(stack)
    assert await _library_errors(stack) == []
    assert (await _answer(stack, "wmRELOADkf07", "包邮吗？"))[0] == [FEE]


async def test_a_library_edit_that_breaks_a_keyword_reply_is_refused(
        library_stack: tuple[Stack, Path]) -> None:
    """Library and chat content are validated as a whole: removing a message a keyword reply
    names is refused with the reply's file and line, and the reply still answers."""
    stack, library = library_stack
    (library / "messages" / "reply_store_hours.toml").unlink()
    await _reload(stack)
    errors = await _library_errors(stack)
    assert [(e["file"], e["message"]) for e in errors] == [
        ("replies/basics.toml", "replies: message 'reply_store_hours' is not in messages/")]
    assert await _answer(stack, "wmRELOADkf11", "营业时间是几点") == (
        [HOURS], "reply:reply:store_hours")
