"""Frozen domain events: what handlers and services see instead of WeCom XML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

E = TypeVar("E", bound="Event")

# Internal events are stored in the inbox like callbacks (written in the transaction of the
# state change they describe) and handled by the same processor: JSON with an "internal" kind.
INTERNAL_PREFIX = '{"internal":'
_INTERNAL: dict[str, type[Event]] = {}


def internal(cls: type[E]) -> type[E]:
    """Register an event class that the app raises itself (stored as JSON in the inbox)."""
    _INTERNAL[cls.__name__] = cls
    return cls



@dataclass(frozen=True, kw_only=True)
class Event:
    """Common to every event: which tenant, and WeCom's CreateTime (UTC)."""

    tenant: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ContactEvent(Event):
    guide: str
    external_userid: str


@dataclass(frozen=True, kw_only=True)
class ContactAdded(ContactEvent):
    """A customer added a guide (add_external_contact), or half-added one (免验证 pending)."""

    state: str = ""
    welcome_code: str = ""
    half: bool = False


@dataclass(frozen=True, kw_only=True)
class ContactEdited(ContactEvent):
    state: str = ""


@dataclass(frozen=True, kw_only=True)
class ContactDeletedByGuide(ContactEvent):
    """del_external_contact; source DELETE_BY_TRANSFER marks the handover side of a transfer."""

    source: str = ""

    @property
    def by_transfer(self) -> bool:
        return self.source == "DELETE_BY_TRANSFER"


@dataclass(frozen=True, kw_only=True)
class ContactDeletedByCustomer(ContactEvent):
    """del_follow_user: the customer deleted the guide."""


@dataclass(frozen=True, kw_only=True)
class TransferFailed(ContactEvent):
    """transfer_fail; `guide` is the takeover guide."""

    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ArchiveConsented(ContactEvent):
    """msg_audit_approved: the customer agreed to chat archiving."""

    welcome_code: str = ""


@dataclass(frozen=True, kw_only=True)
class GroupChatChanged(Event):
    chat_id: str
    change_type: str
    update_detail: str = ""
    members_changed: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CorpTagChanged(Event):
    """change_external_tag: a tag or tag group was created, updated, deleted or reordered."""

    tag_id: str
    tag_type: str = ""
    change_type: str = ""
    strategy_id: str = ""


@dataclass(frozen=True, kw_only=True)
class AppEntered(Event):
    userid: str
    agent_id: str = ""


@dataclass(frozen=True, kw_only=True)
class AppTextMessage(Event):
    """A guide wrote to the app; `content` is never logged."""

    userid: str
    content: str
    msg_id: str = ""
    agent_id: str = ""


@dataclass(frozen=True, kw_only=True)
class AppImageMessage(Event):
    """A guide sent the app a picture: `media_id` fetches it with media/get for 3 days."""

    userid: str
    media_id: str
    pic_url: str = ""
    msg_id: str = ""
    agent_id: str = ""


@dataclass(frozen=True, kw_only=True)
class DirectoryChanged(Event):
    """change_contact: a member or department of the address book was created, updated or
    deleted. Names are not carried: the directory service reads them back from WeCom."""

    change_type: str  # create_user | update_user | delete_user | create_party | …
    userid: str = ""
    new_userid: str = ""  # update_user when the member's userid changed ([mem] NewUserID)
    department_id: int | None = None

    @property
    def about_member(self) -> bool:
        return self.change_type.endswith("_user")


@dataclass(frozen=True, kw_only=True)
class KfMsgOrEvent(Event):
    """kf_msg_or_event: 微信客服 has new messages or events to read with kf/sync_msg (the
    callback carries no content). `token` is valid 10 minutes; `open_kfid` may be absent."""

    token: str = ""
    open_kfid: str = ""


@dataclass(frozen=True, kw_only=True)
class AcquisitionChanged(Event):
    """customer_acquisition: about the paid 获客助手 quota or a link. `change_type` is one of
    ACQUISITION_CHANGES. Only Event and ChangeType are confirmed: the other fields' names
    (LinkId, UserID, ExternalUserID) are assumed, and "" when the callback has none."""

    change_type: str
    link_id: str = ""
    userid: str = ""
    external_userid: str = ""

    @property
    def about_quota(self) -> bool:
        return self.change_type in ("balance_low", "balance_exhausted")


ACQUISITION_CHANGES = ("balance_low", "balance_exhausted", "link_unavailable", "delete_link",
                       "customer_start_chat", "friend_request")


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """Anything we do not model yet: recorded, never a crash."""

    msg_type: str = ""
    event: str = ""
    change_type: str = ""
    fields: tuple[tuple[str, str], ...] = field(default=())


@internal
@dataclass(frozen=True, kw_only=True)
class OrderPaid(Event):
    """Raised by commerce when an order is paid (internal; SOP triggers and exits use it)."""

    order_no: str
    external_userid: str | None = None
    guide: str | None = None
    store_id: str | None = None
    amount_fen: int = 0


@internal
@dataclass(frozen=True, kw_only=True)
class OrderRefunded(Event):
    """Raised by commerce when (part of) an order is refunded."""

    order_no: str
    refund_no: str
    external_userid: str | None = None
    guide: str | None = None
    amount_fen: int = 0


@internal
@dataclass(frozen=True, kw_only=True)
class TagsMarked(Event):
    """Raised when guidebot's own mark_tag added tags to a relation (API edits, channel
    codes, opt-outs): WeCom raises no callback for those. SOP tag triggers and exits use it.
    `ref` names the mark (its outbox key), so a retried mark is one event."""

    ref: str
    external_userid: str
    guide: str
    tags: tuple[str, ...] = ()


@internal
@dataclass(frozen=True, kw_only=True)
class CardOpened(Event):
    """Raised when a customer opens a tracked card of a guide's (互动雷达, alerts/radar.py),
    in the transaction that records the visit, at most once per `ref`: the notice it may
    become (its outbox key, naming the guide, the customer and the time window), so the
    visits of one window are one event. `created_at` is the visit's time."""

    ref: str
    guide: str
    external_userid: str
    token: str
    sku: str = ""


@internal
@dataclass(frozen=True, kw_only=True)
class AutoTagsDue(Event):
    """Raised when what a customer did matches rules of content_library/auto_tags.toml
    (自动打标签, contacts/auto_tags.py), in the transaction that records it: `source` "open"
    (a visit of a card of `guide`'s), "message" (a 微信客服 message; `guide` empty: the
    customer's guide is chosen when it is handled) or "order" (a paid order credited to
    `guide`, empty when to nobody). `tags` are the matching rules' tag names
    at that moment; `ref` names the occurrence (the event's inbox key)."""

    ref: str
    external_userid: str
    source: str
    tags: tuple[str, ...] = ()
    guide: str = ""


def encode_internal(event: Event) -> str:
    import json
    from dataclasses import asdict

    kind = type(event).__name__
    if kind not in _INTERNAL:
        raise TypeError(f"{kind} is not a registered internal event")
    fields = {k: (v.isoformat() if isinstance(v, datetime) else v)
              for k, v in asdict(event).items()}
    return json.dumps({"internal": kind, "fields": dict(sorted(fields.items()))},
                      ensure_ascii=False)


def decode_internal(payload: str) -> Event:
    import json

    data = json.loads(payload)
    cls = _INTERNAL[data["internal"]]
    fields = dict(data["fields"])
    for name, hint in cls.__annotations__.items():
        if name in fields and "datetime" in str(hint) and isinstance(fields[name], str):
            fields[name] = datetime.fromisoformat(fields[name])
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    for name, value in fields.items():
        if isinstance(value, list):  # JSON arrays are tuples in events
            fields[name] = tuple(value)
    return cls(**fields)


def internal_customer(payload: str) -> str:
    """The customer an encoded internal event is about ('' when none)."""
    import json

    return str(json.loads(payload)["fields"].get("external_userid") or "")


def internal_key(event: Event) -> str:
    """The dedup key of an internal event: the same order paid twice is one event."""
    if isinstance(event, OrderRefunded):
        return f"order_refunded:{event.refund_no}"
    if isinstance(event, OrderPaid):
        return f"order_paid:{event.order_no}"
    if isinstance(event, TagsMarked):
        return f"tags_marked:{event.ref}"
    if isinstance(event, CardOpened):
        return f"card_opened:{event.ref}"
    if isinstance(event, AutoTagsDue):
        return f"auto_tags:{event.ref}"
    raise TypeError(f"no key for {type(event).__name__}")
