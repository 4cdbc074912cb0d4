"""入群欢迎语 over HTTP against the sandbox: content_library/group_welcome.toml's templates are
created in WeCom (group_welcome_template/add, pictures uploaded first), edited when their
message changes, deleted when they leave the file, and nothing is called while WeCom holds
what the file says; the console's content page lists them with their template ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

from guidebot import outbox
from guidebot.content.library import load_library
from tests.support.console import Console
from tests.support.stack import ROOT, Stack, library_copy, start_stack

CARD = ('sidebar = false\ntext = "欢迎 %NICKNAME% 进群，新品小程序在这里"\n'
        '[[attachments]]\ntype = "miniprogram"\ntitle = "新品上架"\n'
        'pic_file = "media/kf_card.png"\npage = "pages/new/index.html"\n'
        'appid = "wx5f2c0a1b3d4e6f70"\n')
TWO = ('[[templates]]\nid = "member"\nmessage = "group_welcome_member"\n'
       '[[templates]]\nid = "card"\nmessage = "group_card"\nnotify = false\n')


def _templates(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.sandbox.state("acme")["group_welcome_templates"])


def _template_calls(stack: Stack) -> list[dict[str, Any]]:
    """The calls a template sync may make (the stack's jobs make others meanwhile: the
    address book's, say)."""
    return [c for c in stack.calls()
            if c["path"].startswith(("externalcontact/group_welcome_template", "media/"))]


def _reload(stack: Stack, library: Path) -> None:
    stack.runtime.services.library.replace_with(load_library(library))


async def test_templates_follow_the_file(aiohttp_server: Any, tmp_path: Path,
                                         db_url: str) -> None:
    library = library_copy(tmp_path, {"messages/group_card.toml": CARD,
                                      "group_welcome.toml": TWO})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    try:
        sync = stack.runtime.services.group_welcome
        assert await sync.sync("acme") == {"added": 2, "edited": 0, "removed": 0,
                                           "failed": 0}
        member, card = _templates(stack)
        assert member["text"]["content"].startswith("欢迎 %NICKNAME% 加入会员群")
        assert member["link"]["title"] == "会员权益一览" and member["notify"] == 1
        assert card["miniprogram"]["pic_media_id"] and card["notify"] == 0
        assert card["miniprogram"]["appid"] == "wx5f2c0a1b3d4e6f70"
        assert "pic_file" not in card["miniprogram"]
        calls = len(_template_calls(stack))
        assert await sync.sync("acme") == {"added": 0, "edited": 0, "removed": 0,
                                           "failed": 0}
        assert len(_template_calls(stack)) == calls  # WeCom holds what the file says: no call

        picture = library / "media" / "kf_card.png"  # another picture under the same name
        picture.write_bytes(picture.read_bytes() + b"\0")
        _reload(stack, library)
        assert await sync.sync("acme") == {"added": 0, "edited": 1, "removed": 0,
                                           "failed": 0}
        (recard,) = [t for t in _templates(stack) if t["template_id"] == card["template_id"]]
        assert recard["miniprogram"]["pic_media_id"] != card["miniprogram"]["pic_media_id"]
        assert await sync.sync("acme") == {"added": 0, "edited": 0, "removed": 0,
                                           "failed": 0}

        message = library / "messages" / "group_welcome_member.toml"
        message.write_text(message.read_text(encoding="utf-8").replace(
            "会员群", "静安店会员群"), encoding="utf-8")
        _reload(stack, library)
        assert (await sync.sync("acme"))["edited"] == 1
        (edited,) = [t for t in _templates(stack) if t["template_id"] == member["template_id"]]
        assert "静安店会员群" in edited["text"]["content"]

        console = Console(stack)
        try:
            await console.login("acme", "acme-admin-token")
            status, html, _ = await console.get("/console/acme/content")
            assert status == 200 and 'data-template="member"' in html
            assert member["template_id"] in html and card["template_id"] in html
        finally:
            await console.close()

        (library / "group_welcome.toml").write_text(TWO.split("[[templates]]\nid = \"card\"")[0],
                                                    encoding="utf-8")
        _reload(stack, library)
        assert (await sync.sync("acme"))["removed"] == 1
        assert [t["template_id"] for t in _templates(stack)] == [member["template_id"]]
        assert await sync.sync("acme") == {"added": 0, "edited": 0, "removed": 0,
                                           "failed": 0}
        status, beta = 0, await stack.runtime.services.group_welcome.listed("beta")
        assert [(t["id"], t["template_id"]) for t in beta] == [("member", None)]
    finally:
        await stack.http.close()


def test_the_shipped_template_has_no_guidebot_placeholders() -> None:
    library = load_library(ROOT / "content_library")
    (template,) = library.group_welcome
    assert "%NICKNAME%" in library.messages[template.message].text


async def test_a_refused_template_is_asked_once_and_the_outbox_retries_it(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    try:
        path = "externalcontact/group_welcome_template/add"
        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
                "tenant": "acme", "path": path, "errcode": -1, "times": 10}) as resp:
            assert resp.status == 200
        sync = stack.runtime.services.group_welcome
        assert (await sync.sync("acme"))["failed"] == 1
        asked = len(stack.calls(path))
        assert (await sync.sync("acme"))["failed"] == 0  # not asked again every minute
        assert len(stack.calls(path)) == asked
        async with stack.http.delete(f"{stack.sandbox_url}/_sandbox/faults") as resp:
            assert resp.status == 200
        services = stack.runtime.services
        later = datetime.now(UTC) + timedelta(minutes=10)
        with patch.object(outbox, "utcnow", lambda: later):
            assert await services.outbox.retry_due(services.calls) == 1
        (template,) = _templates(stack)  # the retry made it, and recorded its id
        listed = await sync.listed("acme")
        assert listed[0]["template_id"] == template["template_id"] and listed[0]["current"]
        assert await sync.sync("acme") == {"added": 0, "edited": 0, "removed": 0,
                                           "failed": 0}
    finally:
        await stack.http.close()
