"""change_contact → DirectoryChanged. No official sample was at hand: these payloads are built
from the field names WeCom documents for the event (UserID, Name, Department, Id, ParentId)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from guidebot import events as ev
from guidebot.wecom.parse import parse_event

HEAD = ("<xml><ToUserName><![CDATA[wwacme]]></ToUserName><FromUserName><![CDATA[sys]]>"
        "</FromUserName><CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_contact]]></Event>")
AT = datetime(2014, 6, 24, 11, 48, 33, tzinfo=UTC)


def payload(change: str, body: str) -> str:
    return f"{HEAD}<ChangeType><![CDATA[{change}]]></ChangeType>{body}</xml>"


@pytest.mark.parametrize("change", ["create_user", "update_user", "delete_user"])
def test_member_changes_carry_the_userid(change: str) -> None:
    xml = payload(change, "<UserID><![CDATA[zhangsan]]></UserID><Name><![CDATA[张三]]></Name>"
                          "<Department><![CDATA[1,2]]></Department><Status>1</Status>")
    assert parse_event("acme", xml) == ev.DirectoryChanged(
        tenant="acme", created_at=AT, change_type=change, userid="zhangsan")


def test_a_changed_userid_is_kept() -> None:
    xml = payload("update_user", "<UserID><![CDATA[zhangsan]]></UserID>"
                                 "<NewUserID><![CDATA[zhangsan2]]></NewUserID>")
    event = parse_event("acme", xml)
    assert isinstance(event, ev.DirectoryChanged)
    assert (event.userid, event.new_userid, event.about_member) == ("zhangsan", "zhangsan2",
                                                                    True)


@pytest.mark.parametrize("change", ["create_party", "update_party", "delete_party"])
def test_department_changes_carry_the_department_id(change: str) -> None:
    xml = payload(change, "<Id>2</Id><Name><![CDATA[广州研发中心]]></Name><ParentId>1</ParentId>")
    event = parse_event("acme", xml)
    assert isinstance(event, ev.DirectoryChanged)
    assert (event.change_type, event.department_id, event.userid, event.about_member) == (
        change, 2, "", False)


def test_an_unknown_change_type_stays_unknown() -> None:
    event = parse_event("acme", payload("update_tag", "<TagId>1</TagId>"))
    assert isinstance(event, ev.UnknownEvent) and event.change_type == "update_tag"
