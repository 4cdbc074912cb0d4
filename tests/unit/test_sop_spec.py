"""SOP and drop files: every kind of bad file is a validation error naming file and line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from guidebot.content.errors import ContentInvalid
from guidebot.content.library import load_library

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = 'text = "你好 {{ customer.name }}"\n'
GOOD_SOP = """id = "nurture"
title = "新客培育"

[trigger]
on = "contact_added"
state_prefix = "gb"

[exit]
on = ["order_paid"]

[[steps]]
at = "+0m"
channel = "welcome"
message = "hello"

[[steps]]
at = "day 1 at 10:00"
channel = "guide_task"
message = "hello"
"""


def _problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    files = {"messages/hello.toml": MESSAGE, **files}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentInvalid) as info:
        load_library(tmp_path)
    return [str(p) for p in info.value.problems]


def test_shipped_sops_and_drops_are_valid() -> None:
    library = load_library(ROOT / "content_library")
    assert {"new_customer_nurture", "repurchase_care", "dormant_winback"} <= set(library.sops)
    assert len(library.drops) >= 2
    titles = {s.title for s in library.sops.values()}
    assert {"新客培育", "复购关怀", "沉睡唤醒"} <= titles


def test_a_good_sop_loads(tmp_path: Path) -> None:
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages/hello.toml").write_text(MESSAGE, encoding="utf-8")
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops/nurture.toml").write_text(GOOD_SOP, encoding="utf-8")
    library = load_library(tmp_path)
    sop = library.sops["nurture"]
    assert [s.channel for s in sop.steps] == ["welcome", "guide_task"]
    assert sop.trigger.state_prefix == "gb" and sop.exits == ("order_paid",)


def test_unknown_keys_name_their_line(tmp_path: Path) -> None:
    bad = GOOD_SOP.replace('title = "新客培育"', 'title = "新客培育"\ncolour = "red"').replace(
        'channel = "guide_task"', 'channel = "guide_task"\nsender = "lina"')
    lines = _problems(tmp_path, {"sops/nurture.toml": bad})
    assert any("nurture.toml:3:" in x and "unknown key 'colour'" in x for x in lines)
    assert any("nurture.toml:20:" in x and "steps[1]: unknown key 'sender'" in x for x in lines)


def test_unknown_message_id_is_located_in_its_step(tmp_path: Path) -> None:
    bad = GOOD_SOP.replace('at = "day 1 at 10:00"\nchannel = "guide_task"\nmessage = "hello"',
                           'at = "day 1 at 10:00"\nchannel = "guide_task"\nmessage = "nope"')
    lines = _problems(tmp_path, {"sops/nurture.toml": bad})
    assert any("nurture.toml:19:" in x and "unknown message id 'nope'" in x for x in lines), lines


def test_unknown_placeholder_in_a_message_an_sop_uses(tmp_path: Path) -> None:
    lines = _problems(tmp_path, {"sops/nurture.toml": GOOD_SOP,
                                 "messages/hello.toml": 'text = "{{ customer.phone }}"\n'})
    assert any("hello.toml:1" in x and "customer.phone" in x for x in lines)


def test_impossible_schedules(tmp_path: Path) -> None:
    late_welcome = GOOD_SOP.replace('at = "+0m"', 'at = "+2d"')
    backwards = GOOD_SOP.replace('at = "+0m"\nchannel = "welcome"',
                                 'at = "+3d"\nchannel = "guide_task"')
    bad_time = GOOD_SOP.replace('"day 1 at 10:00"', '"day 1 at 25:00"')
    welcome_on_tag = GOOD_SOP.replace('on = "contact_added"\nstate_prefix = "gb"',
                                      'on = "tag_added"')
    lines = _problems(tmp_path, {"sops/a.toml": late_welcome.replace("nurture", "a"),
                                 "sops/b.toml": backwards.replace("nurture", "b"),
                                 "sops/c.toml": bad_time.replace("nurture", "c"),
                                 "sops/d.toml": welcome_on_tag.replace("nurture", "d")})
    assert any("a.toml:12:" in x and "impossible schedule" in x and "welcome" in x
               for x in lines), lines
    assert any("b.toml:17:" in x and "always comes before" in x for x in lines), lines
    assert any("c.toml:17:" in x and "not a time of day" in x for x in lines), lines
    assert any("d.toml:" in x and "welcome step needs trigger contact_added" in x
               for x in lines), lines


def test_bad_trigger_exit_and_quota_settings(tmp_path: Path) -> None:
    bad = (GOOD_SOP.replace('on = "contact_added"', 'on = "anniversary"')
           .replace('on = ["order_paid"]', 'on = ["refund"]')
           .replace('title = "新客培育"', 'title = "新客培育"\non_quota = "later"\n'
                    'quiet_hours = "9pm-9am"'))
    lines = _problems(tmp_path, {"sops/nurture.toml": bad})
    assert any("trigger.on must be one of" in x and "nurture.toml:7:" in x for x in lines), lines
    assert any("exit 'refund'" in x for x in lines)
    assert any("on_quota" in x and "nurture.toml:3:" in x for x in lines)
    assert any("quiet_hours" in x and "nurture.toml:4:" in x for x in lines)


def test_id_must_match_the_file_and_toml_errors_are_reported(tmp_path: Path) -> None:
    lines = _problems(tmp_path, {"sops/other.toml": GOOD_SOP,
                                 "sops/broken.toml": 'id = "broken"\n[[steps]\n'})
    assert any("other.toml:1:" in x and "must match the file name" in x for x in lines)
    assert any("broken.toml:2" in x and "not valid TOML" in x for x in lines)


def test_drop_errors(tmp_path: Path) -> None:
    lines = _problems(tmp_path, {
        "drops/a.toml": 'id = "a"\ntitle = "t"\ncron = "0 25 * * *"\nchannel = "welcome"\n'
                        'message = "nope"\n[audience]\ntags = ["x"]\n',
        "drops/b.toml": 'id = "b"\ntitle = "t"\ncron = "0 10 * * 5"\nat = 2026-12-10T10:00:00\n'
                        'channel = "moment"\nmessage = "hello"\n',
    })
    assert any("a.toml:3:" in x and "cron: hour" in x for x in lines), lines
    assert any("a.toml:4:" in x and "channel must be one of" in x for x in lines)
    assert any("a.toml:5:" in x and "unknown message id 'nope'" in x for x in lines)
    assert any("a.toml:7:" in x and "audience: unknown key 'tags'" in x for x in lines)
    assert any("b.toml:" in x and "exactly one of cron or at" in x for x in lines)
    assert any("b.toml:4:" in x and "UTC offset" in x for x in lines)


def test_group_drop_audience_errors(tmp_path: Path) -> None:
    lines = _problems(tmp_path, {
        "drops/g.toml": 'id = "g"\ntitle = "t"\ncron = "0 10 * * 6"\nchannel = "group_task"\n'
                        'message = "hello"\n[audience]\nstores = ["S01"]\n'
                        'tags_any = ["VIP"]\ngroup_names = ["会员", ""]\n',
        "drops/c.toml": 'id = "c"\ntitle = "t"\ncron = "0 10 * * 6"\nchannel = "guide_task"\n'
                        'message = "hello"\n[audience]\ngroup_names = ["会员"]\n',
    })
    assert any("g.toml:8:" in x and "tags_any does not apply to channel group_task" in x
               for x in lines), lines
    assert any("g.toml:9:" in x and "group_names must be an array of non-empty strings" in x
               for x in lines), lines
    assert any("c.toml:7:" in x and "group_names is for channel group_task only" in x
               for x in lines), lines


def test_a_group_drop_chooses_groups_by_owner_store_and_name(tmp_path: Path) -> None:
    files = {"messages/hello.toml": MESSAGE,
             "drops/g.toml": 'id = "g"\ntitle = "t"\ncron = "0 10 * * 6"\n'
                             'channel = "group_task"\nmessage = "hello"\n[audience]\n'
                             'stores = ["S01"]\ngroup_names = ["会员", "福利"]\n'}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    drop = load_library(tmp_path).drops["g"]
    assert drop.group_names == ("会员", "福利")
    assert drop.admits_group("静安会员群", "S01", "lina")
    assert drop.admits_group("福利二群", "S01", "zhou")
    assert not drop.admits_group("同事群", "S01", "lina")  # the name holds neither word
    assert not drop.admits_group("会员群", "S02", "lina")  # the owner's store is not S01
    assert not drop.admits_group("会员群", None, "lina")  # an owner without a store


def test_customer_sops_keep_their_digests_when_group_sops_arrive() -> None:
    """A version is its digest: the digests the shipped customer SOPs had before triggers
    gained group_names, so upgrading makes no SOP a new version."""
    sops = load_library(ROOT / "content_library").sops
    assert {k: sops[k].digest() for k in ("dormant_winback", "new_customer_nurture",
                                          "repurchase_care")} == {
        "dormant_winback": "acb434755fcd47338aa8536ae4389ba1",
        "new_customer_nurture": "e5a7a461b750ad2e10f4654353118fe2",
        "repurchase_care": "61ceeb609fb3090a7441cb2c6881c5e7"}
    group = sops["group_nurture"]
    assert group.for_groups and group.trigger.group_names == ("会员", "福利")
    assert group.trigger.admits_group("静安会员群", "S01")
    assert not group.trigger.admits_group("同事群", "S01")


GROUP_SOP = """id = "g"
title = "新群"

[trigger]
on = "group_created"
tags_any = ["VIP"]

[exit]
on = ["order_paid"]

[[steps]]
at = "+1h"
channel = "guide_task"
message = "hello"

[[steps]]
at = "+2h"
channel = "group_task"
message = "hello"
add_tags = ["x"]
"""


def test_group_sop_errors(tmp_path: Path) -> None:
    lines = _problems(tmp_path, {
        "sops/g.toml": GROUP_SOP,
        "sops/c.toml": GOOD_SOP.replace('[exit]\non = ["order_paid"]',
                                        '[exit]\non = ["group_dismissed"]')
                               .replace('on = "contact_added"',
                                        'on = "contact_added"\ngroup_names = ["会员"]')
                               .replace('channel = "guide_task"', 'channel = "group_task"'),
    })
    assert any("g.toml:6:" in x and "tags_any does not apply to group_created" in x
               for x in lines), lines
    assert any("g.toml:9:" in x and "a group_created SOP ends only with group_dismissed" in x
               for x in lines), lines
    assert any("g.toml:13:" in x and "steps are group_task" in x for x in lines), lines
    assert any("g.toml:20:" in x and "add_tags and remove_tags do not apply to groups" in x
               for x in lines), lines
    assert any("c.toml:" in x and "group_names only applies to group_created" in x
               for x in lines), lines
    assert any("c.toml:" in x and "group_dismissed only ends a group_created SOP" in x
               for x in lines), lines
    assert any("c.toml:" in x and "group_task is for group_created SOPs" in x
               for x in lines), lines


BIRTHDAY_SOP = """id = "b"
title = "生日关怀"

[trigger]
on = "birthday"
days_before = {days}
tags_none = ["员工"]

[exit]
on = ["contact_deleted"]

[[steps]]
at = "day 0 at 10:00"
channel = "guide_task"
message = "hello"
"""


def test_a_birthday_sop_loads_with_its_days_before(tmp_path: Path) -> None:
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages/hello.toml").write_text(MESSAGE, encoding="utf-8")
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops/b.toml").write_text(BIRTHDAY_SOP.format(days=3), encoding="utf-8")
    spec = load_library(tmp_path).sops["b"]
    assert (spec.trigger.on, spec.trigger.days_before) == ("birthday", 3)
    assert spec.trigger.audience.tags_none == ("员工",)
    shipped = load_library(ROOT / "content_library").sops["birthday_care"]
    assert (shipped.title, shipped.trigger.on, shipped.trigger.days_before) == (
        "生日关怀", "birthday", 3)
    assert [s.channel for s in shipped.steps] == ["guide_task", "reminder"]
    from guidebot.content.sop_spec import sop_from_json
    assert sop_from_json(spec.to_json()) == spec  # a stored version reads back the same


def test_birthday_trigger_errors_name_file_and_line(tmp_path: Path) -> None:
    lines = _problems(tmp_path, {
        "sops/far.toml": BIRTHDAY_SOP.format(days=31).replace('"b"', '"far"'),
        "sops/neg.toml": BIRTHDAY_SOP.format(days=-1).replace('"b"', '"neg"'),
        "sops/text.toml": BIRTHDAY_SOP.format(days='"3"').replace('"b"', '"text"'),
        "sops/other.toml": GOOD_SOP.replace('id = "nurture"', 'id = "other"').replace(
            'state_prefix = "gb"', 'state_prefix = "gb"\ndays_before = 3'),
        "sops/welcome.toml": BIRTHDAY_SOP.format(days=0).replace('"b"', '"welcome"').replace(
            'at = "day 0 at 10:00"\nchannel = "guide_task"', 'at = "+0m"\nchannel = "welcome"'),
    })
    for name in ("far", "neg", "text"):
        assert any(f"{name}.toml:6:" in x and "days_before must be a whole number of days "
                   "from 0 to 30" in x for x in lines), (name, lines)
    assert any("other.toml:7:" in x and "days_before only applies to birthday" in x
               for x in lines), lines
    assert any("welcome.toml:14:" in x and "a welcome step needs trigger contact_added" in x
               for x in lines), lines


def test_reach_loads_and_a_default_reach_keeps_the_digest(tmp_path: Path) -> None:
    """`reach = "customer"` loads and reads back from a stored version; an SOP without it (or
    with the default "relation") digests as before the key existed: no new version."""
    from guidebot.content.sop_spec import sop_from_json
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages/hello.toml").write_text(MESSAGE, encoding="utf-8")
    (tmp_path / "sops").mkdir()
    for name, line in (("plain", ""), ("rel", 'reach = "relation"\n'),
                       ("cust", 'reach = "customer"\n')):
        (tmp_path / f"sops/{name}.toml").write_text(GOOD_SOP.replace(
            'id = "nurture"', f'id = "{name}"').replace('on = "contact_added"\n',
                                                       f'on = "contact_added"\n{line}'),
            encoding="utf-8")
    sops = load_library(tmp_path).sops
    assert [sops[n].trigger.reach for n in ("plain", "rel", "cust")] == [
        "relation", "relation", "customer"]
    assert sops["cust"].trigger.once_per_customer and not sops["rel"].trigger.once_per_customer
    assert sop_from_json(sops["cust"].to_json()) == sops["cust"]
    old = sops["plain"].to_json().replace(', "reach": "relation"', "")  # stored before reach
    assert '"reach"' not in old and sop_from_json(old) == sops["plain"]
    assert sops["plain"].digest() == "953465eaeec03033c274fd485a01ba5e"  # as before reach
    assert replace(sops["rel"], id="plain").digest() == sops["plain"].digest()
    assert sops["cust"].digest() != sops["plain"].digest()


def test_reach_errors_name_file_and_line(tmp_path: Path) -> None:
    lines = _problems(tmp_path, {
        "sops/typo.toml": GOOD_SOP.replace('id = "nurture"', 'id = "typo"').replace(
            'state_prefix = "gb"', 'state_prefix = "gb"\nreach = "guide"'),
        "sops/bday.toml": BIRTHDAY_SOP.format(days=0).replace('"b"', '"bday"').replace(
            'tags_none = ["员工"]', 'tags_none = ["员工"]\nreach = "customer"'),
        "sops/grp.toml": GROUP_REACH_SOP,
    })
    assert any("typo.toml:7:" in x and "trigger.reach must be one of relation, customer" in x
               for x in lines), lines
    assert any("bday.toml:8:" in x and "reach only applies to contact_added, tag_added, "
               "order_paid, manual" in x and "already reaches each customer once" in x
               for x in lines), lines
    assert any("grp.toml:6:" in x and "reach only applies to" in x
               and "enrolls customer groups" in x for x in lines), lines


GROUP_REACH_SOP = """id = "grp"
title = "新群培育"

[trigger]
on = "group_created"
reach = "customer"

[exit]
on = ["group_dismissed"]

[[steps]]
at = "+10m"
channel = "group_task"
message = "hello"
"""
