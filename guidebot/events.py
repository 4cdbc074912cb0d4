"""Frozen domain events: what handlers and services see instead of WeCom XML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
class UnknownEvent(Event):
    """Anything we do not model yet: recorded, never a crash."""

    msg_type: str = ""
    event: str = ""
    change_type: str = ""
    fields: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, kw_only=True)
class OrderPaid(Event):
    """Raised by commerce when an order is paid (internal; SOP triggers and exits use it)."""

    order_no: str
    external_userid: str | None = None
    guide: str | None = None
    store_id: str | None = None
    amount_fen: int = 0


@dataclass(frozen=True, kw_only=True)
class OrderRefunded(Event):
    """Raised by commerce when (part of) an order is refunded."""

    order_no: str
    refund_no: str
    external_userid: str | None = None
    guide: str | None = None
    amount_fen: int = 0
