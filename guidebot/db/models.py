"""SQLModel tables. Times are UTC; money (later issues) is integer fen."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from guidebot.db.types import UTCDateTime, utcnow


def _utc(nullable: bool = False, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable, index=index)


# Guidebot's own bounds on a relation's remark and description: WeCom's limits are not known
# here (not confirmed), so longer values from WeCom are cut to these when stored.
REMARK_MAX = 128
DESCRIPTION_MAX = 512

class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"
    id: str = Field(primary_key=True, max_length=32)
    corp_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Store(SQLModel, table=True):
    __tablename__ = "stores"
    tenant: str = Field(primary_key=True, max_length=32)
    store_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Guide(SQLModel, table=True):
    __tablename__ = "guides"
    tenant: str = Field(primary_key=True, max_length=32)
    userid: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=128)
    store_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    # From WeCom's address book (contacts/directory.py): a member who left stays, inactive.
    active: bool = Field(default=True)
    wecom_status: int | None = None  # user/get status: 1 active, 2 disabled, 4 new, 5 left
    directory_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_arrival", "tenant", "created_at", "external_userid"),)
    tenant: str = Field(primary_key=True, max_length=32)
    external_userid: str = Field(primary_key=True, max_length=128)
    name: str = Field(default="", max_length=128)
    unionid: str | None = Field(default=None, max_length=128, index=True)
    avatar: str = Field(default="", max_length=512)
    corp_name: str = Field(default="", max_length=128)
    contact_type: int | None = None
    gender: int | None = None
    profile_fetched_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class Follow(SQLModel, table=True):
    """The current state of one guide↔customer relation; its history is in FollowEvent."""

    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("tenant", "guide", "external_userid"),
                      Index("ix_follows_code_added", "tenant", "channel_code_id", "added_at"),
                      Index("ix_follows_added", "tenant", "added_at"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    guide: str = Field(max_length=64)
    external_userid: str = Field(max_length=128, index=True)
    # active | half | deleted_by_guide | deleted_by_customer | transferred
    status: str = Field(max_length=24)
    state: str = Field(default="", max_length=64)
    channel_code_id: int | None = None
    added_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # the guide's remark and description of the customer (WeCom 备注/描述), as externalcontact/get
    # and batch/get_by_user last returned them or as the guide set them in the sidebar
    remark: str = Field(default="", max_length=REMARK_MAX,
                        sa_column_kwargs={"server_default": ""})
    description: str = Field(default="", max_length=DESCRIPTION_MAX,
                             sa_column_kwargs={"server_default": ""})


class FollowEvent(SQLModel, table=True):
    __tablename__ = "follow_events"
    # the day's / month's counts (morning digest, usage) read a tenant's span (migration 0047)
    __table_args__ = (Index("ix_follow_events_tenant_at", "tenant", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    guide: str = Field(max_length=64)
    external_userid: str = Field(max_length=128, index=True)
    # added | half_added | deleted_by_guide | deleted_by_customer | transferred | transfer_failed
    action: str = Field(max_length=24)
    detail: str = Field(default="", max_length=128)
    at: datetime = Field(sa_column=_utc())
    inbox_id: int | None = None


class Binding(SQLModel, table=True):
    """Exclusive-guide bindings (DESIGN §5.4); open bindings have ended_at NULL."""

    __tablename__ = "bindings"
    __table_args__ = (Index("ix_bindings_customer", "tenant", "external_userid"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    external_userid: str = Field(max_length=128)
    guide: str = Field(max_length=64)
    started_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    end_reason: str = Field(default="", max_length=32)


class CorpTag(SQLModel, table=True):
    __tablename__ = "corp_tags"
    tenant: str = Field(primary_key=True, max_length=32)
    tag_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=64)
    group_id: str = Field(default="", max_length=64)
    group_name: str = Field(default="", max_length=64)
    deleted: bool = False
    # WeCom's order of the tag and of its group (0 to 2^32 - 1; migration 0051)
    tag_order: int = Field(default=0, sa_type=BigInteger,
                           sa_column_kwargs={"server_default": "0"})
    group_order: int = Field(default=0, sa_type=BigInteger,
                             sa_column_kwargs={"server_default": "0"})


class CustomerTag(SQLModel, table=True):
    """A corp tag on a customer as marked by one guide (WeCom tags live on the relation)."""

    __tablename__ = "customer_tags"
    tenant: str = Field(primary_key=True, max_length=32)
    external_userid: str = Field(primary_key=True, max_length=128)
    guide: str = Field(primary_key=True, max_length=64)
    tag_id: str = Field(primary_key=True, max_length=64)
    added_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class ChannelCode(SQLModel, table=True):
    __tablename__ = "channel_codes"
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32, index=True)
    state: str = Field(default="", max_length=30)
    config_id: str = Field(default="", max_length=128)
    qr_code: str = Field(default="", max_length=512)  # the QR image, or the link to share
    # qr: a 「联系我」 QR code (add_contact_way); link: a 获客助手 acquisition link
    kind: str = Field(default="qr", max_length=8, sa_column_kwargs={"server_default": "qr"})
    guide: str = Field(max_length=64)
    store_id: str | None = Field(default=None, max_length=64)
    campaign: str = Field(default="", max_length=64)
    tags: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list of names
    welcome_message: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    # 多人活码: every guide of the code (JSON list; "[]" for a code made before, its `guide`
    # alone); `guide` is the first. With a daily_limit, a guide who reached it today (the
    # tenant's day) is taken out of the code until the next day, and the backup guides serve
    # when all have; `serving` is the member list WeCom was last asked to hold ("[]": as
    # created), `serving_day` the day it was decided.
    guides: str = Field(default="[]", sa_column=Column(Text, nullable=False,
                                                       server_default="[]"))
    backup_guides: str = Field(default="[]", sa_column=Column(Text, nullable=False,
                                                              server_default="[]"))
    daily_limit: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    serving: str = Field(default="[]", sa_column=Column(Text, nullable=False,
                                                        server_default="[]"))
    serving_day: str = Field(default="", max_length=10, sa_column_kwargs={"server_default": ""})
    # HQ deleted the code in WeCom (del_contact_way / delete_link): kept for what it brought
    deleted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # A 获客助手 link WeCom said (customer_acquisition event) became unavailable
    # (`unavailable`) or was deleted there (`deleted`); "" while WeCom said nothing.
    wecom_status: str = Field(default="", max_length=16,
                              sa_column_kwargs={"server_default": ""})
    wecom_status_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    # 自动通过好友: WeCom adds a customer without the guide's confirmation (skip_verify), only
    # inside `auto_accept_hours` ("HH:MM-HH:MM" of the tenant's day, the end may come first:
    # past midnight; "" all day). `skip_verify_now` is what WeCom was last told (the
    # ChannelAutoAccept job tells it at the window's edges), `skip_verify_key` the outbox key
    # of the last change the job asked.
    skip_verify: bool = Field(default=True)
    auto_accept_hours: str = Field(default="", max_length=11,
                                   sa_column_kwargs={"server_default": ""})
    skip_verify_now: bool = Field(default=True)
    skip_verify_key: str = Field(default="", max_length=160,
                                 sa_column_kwargs={"server_default": ""})

    @property
    def single(self) -> bool:
        """A type 1 「联系我」 code: made for one guide without backups; WeCom keeps it one."""
        return self.kind == "qr" and not json.loads(self.guides or "[]")

    def guide_list(self) -> list[str]:
        return list(json.loads(self.guides or "[]")) or [self.guide]

    def backup_list(self) -> list[str]:
        return list(json.loads(self.backup_guides or "[]"))

    def serving_list(self) -> list[str]:
        return list(json.loads(self.serving or "[]")) or self.guide_list()


class AcquisitionQuota(SQLModel, table=True):
    """A tenant's last reading of its paid 获客助手 quota (customer_acquisition_quota)."""

    __tablename__ = "acquisition_quotas"
    tenant: str = Field(primary_key=True, max_length=32)
    total: int = 0
    balance: int = 0
    # JSON [{"expire_date": unix seconds, "balance": n}] as WeCom answered it
    quota_list: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    read_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class InboxItem(SQLModel, table=True):
    """Every accepted callback, once (deduped on a digest of the decrypted payload)."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("tenant", "digest"),
        Index("ix_inbox_pending", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
        Index("ix_inbox_pending_key", "tenant", "order_key", "id",
              sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
        # a tenant's items by when they were handled: retention's delete (0064)
        Index("ix_inbox_handled", "tenant", "processed_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    digest: str = Field(max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    processed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    attempts: int = 0
    outcome: str = Field(default="", max_length=32)
    last_error: str = Field(default="", max_length=512)
    # Items of one customer are handled in id order (only the oldest pending one is claimable).
    order_key: str = Field(default="", max_length=160)
    # A claim is a lease: a process handling the item renews it; a dead one's runs out.
    # A failed item waits for its retry with no owner and lease_until set to the retry time.
    lease_owner: str = Field(default="", max_length=40)
    lease_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


# An outbox row's payload once data retention blanked its texts (guidebot/retention.py): valid
# JSON naming nobody; such a row is never sent again (the console refuses its retry).
BLANKED_PAYLOAD = '{"blanked": true}'


class OutboxItem(SQLModel, table=True):
    """Every outbound WeCom call with side effects, keyed so it happens at most once."""

    __tablename__ = "outbox"
    # By status, then tenant: the retry pass's reads by status, and the rows by tenant and
    # state that /metrics counts from this index alone (migration 0026).
    __table_args__ = (UniqueConstraint("tenant", "key"),
                      Index("ix_outbox_status_tenant", "status", "tenant"))
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    key: str = Field(max_length=160)
    kind: str = Field(max_length=32)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    # pending | sending | done | failed | dead | expired
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str = Field(default="", max_length=512)
    result: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    due_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    deadline_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc())
    # A "sending" row is leased by the process making the call (renewed while it retries);
    # when the lease runs out, the row is another process's to retry.
    lease_owner: str = Field(default="", max_length=40)
    lease_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class AppMessageSend(SQLModel, table=True):
    """One app message (message/send) to a guide, taken from their per-minute budget
    (guidebot/app_quota.py): WeCom silently drops a member's messages over
    `app_msg_per_guide_per_min` (FACTS §3.7). Rows a few minutes old are pruned."""

    __tablename__ = "app_message_sends"
    __table_args__ = (Index("ix_app_message_sends_guide_at", "tenant", "guide", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    guide: str = Field(max_length=64)
    at: datetime = Field(sa_column=_utc())


class AccessToken(SQLModel, table=True):
    """The WeCom access token per tenant, shared by every guidebot process."""

    __tablename__ = "access_tokens"
    tenant: str = Field(primary_key=True, max_length=32)
    token: str = Field(max_length=512)
    expires_at: datetime = Field(sa_column=_utc())
    fetched_at: datetime = Field(default_factory=utcnow, sa_column=_utc())


class MediaUpload(SQLModel, table=True):
    """A content_library picture uploaded with media/upload: its media_id lives 3 days
    (FACTS §3.9), so it is reused while young and uploaded again after."""

    __tablename__ = "media_uploads"
    tenant: str = Field(primary_key=True, max_length=32)
    digest: str = Field(primary_key=True, max_length=64)  # sha256 of the file's bytes
    media_id: str = Field(max_length=256)
    uploaded_at: datetime = Field(sa_column=_utc())
