"""分时段欢迎语 over HTTP: an add through the sandbox is welcomed with the text for its time of
day in the tenant's zone (the first `[[hours]]` table holding it), the message's own text
otherwise, with the message's attachments either way; the console shows each message's texts
for their hours. The tables are written around the moment the test runs, so the outcome does
not depend on the time of day."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.console import Console
from tests.support.stack import Stack, library_copy, start_stack

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test tenants' time zone


def _hm(at: datetime) -> str:
    return at.strftime("%H:%M")


def _welcome(now: datetime) -> str:
    """welcome_default with three tables: on other weekdays only (around now), then around
    now, then an hour that is not now."""
    today, tomorrow = now.isoweekday(), (now + timedelta(days=1)).isoweekday()
    others = [d for d in range(1, 8) if d not in (today, tomorrow)]
    around = f"{_hm(now - timedelta(hours=1))}-{_hm(now + timedelta(hours=1))}"
    later = f"{_hm(now + timedelta(hours=2))}-{_hm(now + timedelta(hours=3))}"
    return f'''text = "您好，我是导购{{{{ guide.name }}}}"

[[hours]]
between = "{around}"
weekdays = {others}
text = "不是今天的时段"

[[hours]]
between = "{around}"
text = "{{{{ guide.name }}}}正在忙，稍后回复您"

[[hours]]
between = "{later}"
text = "晚些时候的时段"

[[attachments]]
type = "link"
title = "会员中心"
url = "https://example.com/member"
'''


def _double11(now: datetime) -> str:
    later = f"{_hm(now + timedelta(hours=2))}-{_hm(now + timedelta(hours=3))}"
    return f'''text = "双十一专属福利"

[[hours]]
between = "{later}"
text = "晚些时候的双十一时段"
'''


@pytest.fixture
async def hours_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    now = datetime.now(SHANGHAI)
    library = library_copy(tmp_path, {"messages/welcome_default.toml": _welcome(now),
                                      "messages/welcome_double11.toml": _double11(now)})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield stack
    await stack.http.close()


async def test_the_welcome_is_the_text_for_the_time_of_the_add(hours_stack: Stack) -> None:
    stack = hours_stack
    await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    [welcome] = stack.calls("externalcontact/send_welcome_msg")
    body = welcome["body"]
    assert body["text"]["content"].endswith("正在忙，稍后回复您"), body
    assert [a["link"]["title"] for a in body["attachments"]] == ["会员中心"]

    # a channel code's own welcome whose hours do not hold now: its own text
    status, code = await stack.admin("/channels", method="POST", json={
        "guide": "zhaolei", "welcome_message": "welcome_double11"})
    assert status == 201, code
    await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"], name="林悦")
    await stack.runtime.drain()
    latest = stack.calls("externalcontact/send_welcome_msg")[-1]["body"]
    assert latest["text"]["content"] == "双十一专属福利"


async def test_the_console_shows_each_text_with_its_hours(hours_stack: Stack) -> None:
    console = Console(hours_stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/content")
        assert status == 200
        assert html.count('class="timed"') == 4, html
        assert "正在忙，稍后回复您" in html and "晚些时候的双十一时段" in html
        assert "（仅周" in html  # the weekday-only table names its days
    finally:
        await console.close()
