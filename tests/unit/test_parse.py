"""parse_event: every sample in tests/data/events → the right frozen event, and tolerance."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guidebot import events as ev
from guidebot.wecom.parse import parse_event
from guidebot.wecom.xml import UnsafeOrInvalidXml

EVENTS = Path(__file__).resolve().parents[1] / "data" / "events"
TENANT = "acme"
AT_1403610513 = datetime(2014, 6, 24, 11, 48, 33, tzinfo=UTC)


def sample(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


def strip_cdata(xml: str) -> str:
    return re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", xml, flags=re.S)


def children(xml: str) -> list[str]:
    """The root's child elements as raw text (nested elements stay inside their parent)."""
    body = re.sub(r"^\s*<xml>|</xml>\s*$", "", xml.strip())
    parts = [m.group(0) for m in re.finditer(r"<(\w+)>.*?</\1>", body, flags=re.S)]
    assert len(parts) >= 5, xml
    return parts


def contact(cls: type[ev.ContactEvent], external: str, **extra: object) -> ev.Event:
    return cls(tenant=TENANT, created_at=AT_1403610513, guide="zhangsan",
               external_userid=external, **extra)  # type: ignore[arg-type]


def tag(change_type: str, *, tag_type: str = "tag", strategy_id: str = "1") -> ev.Event:
    return ev.CorpTagChanged(tenant=TENANT, created_at=AT_1403610513, tag_id="TAG_ID",
                             tag_type=tag_type, change_type=change_type, strategy_id=strategy_id)


EXPECTED: dict[str, ev.Event] = {
    "change_external_contact.add_external_contact.xml": contact(
        ev.ContactAdded, "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", state="teststate",
        welcome_code="WELCOMECODE", half=False),
    "change_external_contact.add_half_external_contact.xml": contact(
        ev.ContactAdded, "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA", state="teststate",
        welcome_code="WELCOMECODE", half=True),
    "change_external_contact.edit_external_contact.xml": contact(
        ev.ContactEdited, "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", state="teststate"),
    "change_external_contact.del_external_contact.xml": contact(
        ev.ContactDeletedByGuide, "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
        source="DELETE_BY_TRANSFER"),
    "change_external_contact.del_follow_user.xml": contact(
        ev.ContactDeletedByCustomer, "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA"),
    "change_external_contact.transfer_fail.xml": contact(
        ev.TransferFailed, "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", reason="customer_refused"),
    "change_external_contact.msg_audit_approved.xml": contact(
        ev.ArchiveConsented, "woAJ2GCAAABiuyujaWJHDDGi0mACHAAA", welcome_code="WELCOMECODE"),
    "change_external_chat.create.xml": ev.GroupChatChanged(
        tenant=TENANT, created_at=AT_1403610513, chat_id="CHAT_ID", change_type="create"),
    "change_external_chat.dismiss.selfbuilt.xml": ev.GroupChatChanged(
        tenant=TENANT, created_at=AT_1403610513, chat_id="CHAT_ID", change_type="dismiss"),
    "change_external_chat.update.add_member.xml": ev.GroupChatChanged(
        tenant=TENANT, created_at=AT_1403610513, chat_id="wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ",
        change_type="update", update_detail="add_member", members_changed=("Jack", "Rose")),
    "change_external_tag.create.xml": tag("create"),
    "change_external_tag.update.xml": tag("update"),
    "change_external_tag.delete.xml": tag("delete"),
    "change_external_tag.shuffle.xml": tag("shuffle", tag_type="", strategy_id="STRATEGY_ID"),
    "enter_agent.xml": ev.AppEntered(
        tenant=TENANT, created_at=datetime(2014, 8, 15, 8, 26, 29, tzinfo=UTC),
        userid="FromUser", agent_id="1"),
    "text_message.doc.xml": ev.AppTextMessage(
        tenant=TENANT, created_at=datetime(2012, 9, 28, 11, 31, 0, tzinfo=UTC),
        userid="fromUser", content="this is a test", msg_id="1234567890123456", agent_id="1"),
}


def test_every_sample_file_has_an_expectation() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.xml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses_to_the_expected_event(name: str) -> None:
    event = parse_event(TENANT, sample(name))
    expected = EXPECTED[name]
    assert type(event) is type(expected)
    assert event == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_created_at_is_create_time_in_utc(name: str) -> None:
    event = parse_event(TENANT, sample(name))
    found = re.search(r"<CreateTime>(\d+)</CreateTime>", sample(name))
    assert found
    create_time = int(found.group(1))
    assert event.created_at.tzinfo is not None
    assert event.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.created_at.timestamp() == create_time


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bytes_input_parses_the_same(name: str) -> None:
    assert parse_event(TENANT, sample(name).encode("utf-8")) == EXPECTED[name]


def test_tenant_is_carried_through() -> None:
    event = parse_event("beta", sample("change_external_contact.add_external_contact.xml"))
    assert event.tenant == "beta"


def test_del_external_contact_source_and_by_transfer() -> None:
    event = parse_event(TENANT, sample("change_external_contact.del_external_contact.xml"))
    assert isinstance(event, ev.ContactDeletedByGuide)
    assert event.source == "DELETE_BY_TRANSFER" and event.by_transfer is True
    plain = sample("change_external_contact.del_external_contact.xml").replace(
        "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>\n", "")
    event = parse_event(TENANT, plain)
    assert isinstance(event, ev.ContactDeletedByGuide)
    assert event.source == "" and event.by_transfer is False


def test_add_external_contact_is_not_half_and_add_half_is() -> None:
    full = parse_event(TENANT, sample("change_external_contact.add_external_contact.xml"))
    half = parse_event(TENANT, sample("change_external_contact.add_half_external_contact.xml"))
    assert isinstance(full, ev.ContactAdded) and full.half is False
    assert isinstance(half, ev.ContactAdded) and half.half is True


def test_transfer_fail_limit_exceeded_reason() -> None:
    xml = sample("change_external_contact.transfer_fail.xml").replace(
        "customer_refused", "customer_limit_exceed")
    event = parse_event(TENANT, xml)
    assert isinstance(event, ev.TransferFailed) and event.reason == "customer_limit_exceed"


# --- tolerance --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_without_cdata(name: str) -> None:
    xml = strip_cdata(sample(name))
    assert "CDATA" not in xml
    assert parse_event(TENANT, xml) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reversed_element_order(name: str) -> None:
    parts = children(sample(name))
    xml = "<xml>" + "".join(reversed(parts)) + "</xml>"
    assert parse_event(TENANT, xml) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_on_one_line_without_whitespace(name: str) -> None:
    xml = re.sub(r">\s+<", "><", sample(name).strip())
    assert parse_event(TENANT, xml) == EXPECTED[name]


ADD = sample("change_external_contact.add_external_contact.xml")
ADD_CHILDREN = children(ADD)


@settings(max_examples=200, deadline=None)
@given(order=st.permutations(ADD_CHILDREN), cdata=st.booleans())
def test_any_child_order_of_add_external_contact_is_the_same_event(order: list[str],
                                                                   cdata: bool) -> None:
    xml = "<xml>\n" + "\n".join(order) + "\n</xml>"
    if not cdata:
        xml = strip_cdata(xml)
    assert parse_event(TENANT, xml) == EXPECTED["change_external_contact.add_external_contact.xml"]


@pytest.mark.parametrize("drop", [("State",), ("WelcomeCode",), ("State", "WelcomeCode")])
def test_add_external_contact_without_optional_fields(drop: tuple[str, ...]) -> None:
    xml = ADD
    for name in drop:
        xml = re.sub(rf"<{name}>.*?</{name}>\s*", "", xml)
        assert f"<{name}>" not in xml
    event = parse_event(TENANT, xml)
    assert isinstance(event, ev.ContactAdded)
    assert event.guide == "zhangsan"
    assert event.external_userid == "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
    assert event.state == ("" if "State" in drop else "teststate")
    assert event.welcome_code == ("" if "WelcomeCode" in drop else "WELCOMECODE")


def test_empty_optional_fields_are_empty_strings() -> None:
    xml = ADD.replace("teststate", "").replace("WELCOMECODE", "")
    event = parse_event(TENANT, xml)
    assert isinstance(event, ev.ContactAdded)
    assert (event.state, event.welcome_code) == ("", "")


def test_values_are_trimmed_and_unescaped() -> None:
    xml = ("<xml><ToUserName>toUser</ToUserName><FromUserName>guide01</FromUserName>"
           "<CreateTime>1700000000</CreateTime><MsgType>text</MsgType>"
           "<Content>  价格 &lt;299&gt; &amp; 包邮 </Content><MsgId>42</MsgId>"
           "<AgentID>1000002</AgentID></xml>")
    event = parse_event(TENANT, xml)
    assert event == ev.AppTextMessage(
        tenant=TENANT, created_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        userid="guide01", content="价格 <299> & 包邮", msg_id="42", agent_id="1000002")


def test_single_member_change_is_a_one_tuple() -> None:
    xml = sample("change_external_chat.update.add_member.xml").replace("<Item>Rose</Item>\n", "")
    event = parse_event(TENANT, xml)
    assert isinstance(event, ev.GroupChatChanged)
    assert event.members_changed == ("Jack",)


def test_group_update_without_member_list() -> None:
    xml = ("<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName>"
           "<CreateTime>1403610513</CreateTime><MsgType>event</MsgType>"
           "<Event>change_external_chat</Event><ChatId>wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA</ChatId>"
           "<ChangeType>update</ChangeType><UpdateDetail>change_name</UpdateDetail></xml>")
    assert parse_event(TENANT, xml) == ev.GroupChatChanged(
        tenant=TENANT, created_at=AT_1403610513, chat_id="wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA",
        change_type="update", update_detail="change_name", members_changed=())


# --- unknown and incomplete payloads ------------------------------------------------------------

def test_unknown_event_keeps_its_fields() -> None:
    xml = ("<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName>"
           "<CreateTime>1403610513</CreateTime><MsgType>event</MsgType>"
           "<Event>brand_new_event</Event><ChangeType>whatever</ChangeType>"
           "<Foo><![CDATA[bar]]></Foo></xml>")
    event = parse_event(TENANT, xml)
    assert event == ev.UnknownEvent(
        tenant=TENANT, created_at=AT_1403610513, msg_type="event", event="brand_new_event",
        change_type="whatever", fields=(
            ("ChangeType", "whatever"), ("CreateTime", "1403610513"),
            ("Event", "brand_new_event"), ("Foo", "bar"), ("FromUserName", "sys"),
            ("MsgType", "event"), ("ToUserName", "ww1")))


def test_unknown_change_type_of_a_known_event_is_unknown() -> None:
    xml = ADD.replace("add_external_contact", "brand_new_change")
    event = parse_event(TENANT, xml)
    assert isinstance(event, ev.UnknownEvent)
    assert (event.msg_type, event.event, event.change_type) == (
        "event", "change_external_contact", "brand_new_change")
    assert ("ExternalUserID", "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA") in event.fields
    assert event.created_at == AT_1403610513


def test_unknown_message_type_is_unknown() -> None:
    """Voice messages are not modelled (image messages are: the material centre's)."""
    xml = ("<xml><ToUserName>ww1</ToUserName><FromUserName>guide01</FromUserName>"
           "<CreateTime>1403610513</CreateTime><MsgType>voice</MsgType>"
           "<MediaId>m-1</MediaId><Format>amr</Format><MsgId>7</MsgId></xml>")
    event = parse_event(TENANT, xml)
    assert isinstance(event, ev.UnknownEvent)
    assert event.msg_type == "voice" and ("MsgId", "7") in event.fields


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if n.startswith(
    "change_external_contact.")])
@pytest.mark.parametrize("missing", ["ExternalUserID", "UserID"])
def test_contact_event_missing_a_party_is_unknown(name: str, missing: str) -> None:
    xml = re.sub(rf"<{missing}>.*?</{missing}>\s*", "", sample(name))
    assert f"<{missing}>" not in xml
    event = parse_event(TENANT, xml)
    assert isinstance(event, ev.UnknownEvent), event
    assert event.event == "change_external_contact"
    assert event.change_type == name.split(".")[1]
    assert event.created_at == AT_1403610513


def test_contact_event_with_empty_external_userid_is_unknown() -> None:
    xml = ADD.replace("woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", "")
    assert isinstance(parse_event(TENANT, xml), ev.UnknownEvent)


# --- hostile plaintext -------------------------------------------------------------------------

@pytest.mark.parametrize("prolog", [
    '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">',
])
def test_dtd_in_plaintext_is_refused(prolog: str) -> None:
    with pytest.raises(UnsafeOrInvalidXml):
        parse_event(TENANT, prolog + ADD)


@pytest.mark.parametrize("plaintext", ["", "not xml", "<xml><UserID>x</xml>"])
def test_malformed_plaintext_is_refused(plaintext: str) -> None:
    with pytest.raises(UnsafeOrInvalidXml):
        parse_event(TENANT, plaintext)
