"""Decrypted callback XML → frozen domain events, by lookup table with an unknown fallback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from guidebot import events as ev
from guidebot.wecom.xml import flatten, parse_xml

Fields = dict[str, str | list[str]]
Builder = Callable[[str, datetime, Fields], ev.Event]


def _text(fields: Fields, name: str) -> str:
    value = fields.get(name, "")
    return value if isinstance(value, str) else ""


def _items(fields: Fields, name: str) -> tuple[str, ...]:
    value = fields.get(name)
    if isinstance(value, list):
        return tuple(value)
    return (value,) if value else ()


def _created_at(fields: Fields) -> datetime:
    raw = _text(fields, "CreateTime")
    seconds = int(raw) if raw.isdigit() else 0
    return datetime.fromtimestamp(seconds, UTC)


def _contact(cls: type[ev.ContactEvent], **extra: str) -> Builder:
    """Builder for contact events; `extra` maps event attributes to XML element names."""

    def build(tenant: str, at: datetime, f: Fields) -> ev.Event:
        values = {attr: _text(f, tag) for attr, tag in extra.items()}
        return cls(tenant=tenant, created_at=at, guide=_text(f, "UserID"),
                   external_userid=_text(f, "ExternalUserID"), **values)

    return build


def _half_added(tenant: str, at: datetime, f: Fields) -> ev.Event:
    return ev.ContactAdded(tenant=tenant, created_at=at, guide=_text(f, "UserID"),
                           external_userid=_text(f, "ExternalUserID"), state=_text(f, "State"),
                           welcome_code=_text(f, "WelcomeCode"), half=True)


def _group_chat(tenant: str, at: datetime, f: Fields) -> ev.Event:
    return ev.GroupChatChanged(tenant=tenant, created_at=at, chat_id=_text(f, "ChatId"),
                               change_type=_text(f, "ChangeType"),
                               update_detail=_text(f, "UpdateDetail"),
                               members_changed=_items(f, "MemChangeList"))


def _tag(tenant: str, at: datetime, f: Fields) -> ev.Event:
    return ev.CorpTagChanged(tenant=tenant, created_at=at, tag_id=_text(f, "Id"),
                             tag_type=_text(f, "TagType"), change_type=_text(f, "ChangeType"),
                             strategy_id=_text(f, "StrategyId"))


def _enter_agent(tenant: str, at: datetime, f: Fields) -> ev.Event:
    return ev.AppEntered(tenant=tenant, created_at=at, userid=_text(f, "FromUserName"),
                         agent_id=_text(f, "AgentID"))


def _text_message(tenant: str, at: datetime, f: Fields) -> ev.Event:
    return ev.AppTextMessage(tenant=tenant, created_at=at, userid=_text(f, "FromUserName"),
                             content=_text(f, "Content"), msg_id=_text(f, "MsgId"),
                             agent_id=_text(f, "AgentID"))


def _image_message(tenant: str, at: datetime, f: Fields) -> ev.Event:
    # PicUrl and MediaId as wechatpy's ImageMessage reads them; FACTS lists only the text
    # message's fields (Content, MsgId, AgentID) [image fields unconfirmed there].
    return ev.AppImageMessage(tenant=tenant, created_at=at, userid=_text(f, "FromUserName"),
                              media_id=_text(f, "MediaId"), pic_url=_text(f, "PicUrl"),
                              msg_id=_text(f, "MsgId"), agent_id=_text(f, "AgentID"))


def _directory(tenant: str, at: datetime, f: Fields) -> ev.Event:
    # Field names from FACTS-next §I (UserID, Id, …); NewUserID is [mem], not in FACTS.
    party = _text(f, "Id")
    return ev.DirectoryChanged(tenant=tenant, created_at=at, change_type=_text(f, "ChangeType"),
                               userid=_text(f, "UserID"), new_userid=_text(f, "NewUserID"),
                               department_id=int(party) if party.isdigit() else None)
def _kf(tenant: str, at: datetime, f: Fields) -> ev.Event:
    return ev.KfMsgOrEvent(tenant=tenant, created_at=at, token=_text(f, "Token"),
                           open_kfid=_text(f, "OpenKfId"))


def _acquisition(tenant: str, at: datetime, f: Fields) -> ev.Event:
    # Event=customer_acquisition and its ChangeType values are known; the names of the other
    # fields are not confirmed: LinkId (as link_id in the APIs), UserID and ExternalUserID
    # (as in change_external_contact) are assumed. A field that is absent is "".
    return ev.AcquisitionChanged(tenant=tenant, created_at=at,
                                 change_type=_text(f, "ChangeType"), link_id=_text(f, "LinkId"),
                                 userid=_text(f, "UserID"),
                                 external_userid=_text(f, "ExternalUserID"))


_CONTACT = "change_external_contact"
# (MsgType, Event, ChangeType) → builder; "" matches any ChangeType.
BUILDERS: dict[tuple[str, str, str], Builder] = {
    ("event", _CONTACT, "add_external_contact"): _contact(
        ev.ContactAdded, state="State", welcome_code="WelcomeCode"),
    ("event", _CONTACT, "add_half_external_contact"): _half_added,
    ("event", _CONTACT, "edit_external_contact"): _contact(ev.ContactEdited, state="State"),
    ("event", _CONTACT, "del_external_contact"): _contact(
        ev.ContactDeletedByGuide, source="Source"),
    ("event", _CONTACT, "del_follow_user"): _contact(ev.ContactDeletedByCustomer),
    ("event", _CONTACT, "transfer_fail"): _contact(ev.TransferFailed, reason="FailReason"),
    ("event", _CONTACT, "msg_audit_approved"): _contact(
        ev.ArchiveConsented, welcome_code="WelcomeCode"),
    ("event", "change_external_chat", ""): _group_chat,
    ("event", "change_external_tag", ""): _tag,
    **{("event", "change_contact", change): _directory for change in (
        "create_user", "update_user", "delete_user", "create_party", "update_party",
        "delete_party")},
    ("event", "enter_agent", ""): _enter_agent,
    ("text", "", ""): _text_message,
    ("image", "", ""): _image_message,
    ("event", "kf_msg_or_event", ""): _kf,
    # Only the known change types: any other stays an UnknownEvent.
    **{("event", "customer_acquisition", change): _acquisition
       for change in ev.ACQUISITION_CHANGES},
}

def parse_fields(plaintext: str | bytes) -> Fields:
    """Raises UnsafeOrInvalidXml for anything that is not plain well-formed XML."""
    return flatten(parse_xml(plaintext))


def to_event(tenant: str, fields: Fields) -> ev.Event:
    msg_type, event = _text(fields, "MsgType"), _text(fields, "Event")
    change_type = _text(fields, "ChangeType")
    builder = BUILDERS.get((msg_type, event, change_type)) or BUILDERS.get(
        (msg_type, event, ""))
    at = _created_at(fields)
    if builder is not None:
        built = builder(tenant, at, fields)
        # Contact events are useless without both parties; such payloads become UnknownEvent.
        if not isinstance(built, ev.ContactEvent) or (built.guide and built.external_userid):
            return built
    flat = tuple(sorted((k, v) for k, v in fields.items() if isinstance(v, str)))
    return ev.UnknownEvent(tenant=tenant, created_at=at, msg_type=msg_type, event=event,
                           change_type=change_type, fields=flat)


def parse_event(tenant: str, plaintext: str | bytes) -> ev.Event:
    return to_event(tenant, parse_fields(plaintext))
