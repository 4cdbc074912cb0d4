"""分时段欢迎语 in a message file: `[[hours]]` tables checked with file and line, and the text
for a moment in the tenant's time zone (wrapping midnight, weekdays of the local date)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library

SHANGHAI = ZoneInfo("Asia/Shanghai")
WELCOME = '''text = "您好，我是{{ guide.name }}"

[[hours]]
between = "12:00-13:30"
weekdays = [6, 7]
text = "周末午休中，稍后回复您"

[[hours]]
between = "21:00-09:00"
text = "{{ guide.name }}已下班，明早 9 点回复您"
'''


def _load(tmp_path: Path, files: dict[str, str]):  # type: ignore[no-untyped-def]
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return load_library(tmp_path)


@pytest.mark.parametrize(("local", "expected"), [
    (datetime(2026, 12, 7, 10, 0), "您好，我是{{ guide.name }}"),  # Monday morning
    (datetime(2026, 12, 7, 12, 30), "您好，我是{{ guide.name }}"),  # a weekday's noon
    (datetime(2026, 12, 12, 12, 30), "周末午休中，稍后回复您"),  # Saturday noon
    (datetime(2026, 12, 12, 13, 30), "您好，我是{{ guide.name }}"),  # the end is outside
    (datetime(2026, 12, 7, 21, 0), "{{ guide.name }}已下班，明早 9 点回复您"),
    (datetime(2026, 12, 8, 3, 15), "{{ guide.name }}已下班，明早 9 点回复您"),  # past midnight
    (datetime(2026, 12, 8, 9, 0), "您好，我是{{ guide.name }}"),
])
def test_the_text_for_the_moment(tmp_path: Path, local: datetime, expected: str) -> None:
    message = _load(tmp_path, {"messages/welcome_default.toml": WELCOME}).messages[
        "welcome_default"]
    chosen = message.at(local.replace(tzinfo=SHANGHAI))
    assert chosen.text == expected
    assert chosen.attachments == message.attachments and chosen.id == message.id


def test_bad_tables_are_named_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ContentInvalid) as info:
        _load(tmp_path, {"messages/night.toml": '''text = "您好"

[[hours]]
between = "21:00-09:00"
text = "好的"

[[hours]]
between = "25:00-09:00"
weekdays = [0]
text = "{{ customer.phone }}"
colour = "red"

[[hours]]
between = "10:00-10:00"
text = ""
''', "messages/flat.toml": 'text = "您好"\nhours = "21:00-09:00"\n'})
    lines = [str(p) for p in info.value.problems]
    assert any("night.toml:7" in x and "between" in x and "25:00" in x for x in lines), lines
    assert any("night.toml:7" in x and "weekdays" in x for x in lines), lines
    assert any("night.toml:7" in x and "customer.phone" in x for x in lines), lines
    assert any("night.toml:7" in x and "unknown key 'colour'" in x for x in lines), lines
    assert any("night.toml:13" in x and "holds no time" in x for x in lines), lines
    assert any("night.toml:13" in x and "text must be a non-empty string" in x
               for x in lines), lines
    assert any("flat.toml" in x and "array of tables" in x for x in lines), lines
    assert not any("night.toml:3" in x for x in lines), lines  # the first table is fine


@pytest.mark.parametrize("shipped", ["content_library/messages/welcome_default.toml",
                                     "guidebot/templates/init/welcome_default.toml"])
def test_the_shipped_commented_example_loads_when_uncommented(tmp_path: Path,
                                                              shipped: str) -> None:
    source = (Path(__file__).resolve().parents[2] / shipped).read_text(encoding="utf-8")
    head, marker, example = source.partition("# [[hours]]")
    assert marker, shipped
    uncommented = head + "\n".join(line.removeprefix("# ") for line in
                                   (marker + example).splitlines()) + "\n"
    message = _load(tmp_path, {"messages/welcome_default.toml": uncommented}).messages[
        "welcome_default"]
    assert [h.between for h in message.hours] == ["21:30-09:30"]
    assert "门店已打烊" in message.at(datetime(2026, 12, 7, 23, 0, tzinfo=SHANGHAI)).text
    assert message.at(datetime(2026, 12, 7, 12, 0, tzinfo=SHANGHAI)).text == message.text
