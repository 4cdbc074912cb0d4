"""Request and answer shapes of the admin API: validation and the OpenAPI document both come
from these models (DESIGN §5.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

# WeCom member userid (成员账号): 1–64 characters of letters, digits and `_-.@`. FACTS.md does
# not state this rule [unconfirmed there]; it is the address-book doc's 账号 rule.
USERID = r"^[A-Za-z0-9_.@-]{1,64}$"
# external_userid: ASCII letters, digits, `_` and `-` (ids look like "wm" + 30 characters,
# FACTS-next.md samples "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw"); the length bound is ours.
EXTERNAL_USERID = r"^[A-Za-z0-9_-]{1,64}$"
# Statement periods: ASCII YYYY-MM, years 1970–2199 (`$` here is the end of the text).
PERIOD = r"^(19[7-9][0-9]|2[01][0-9]{2})-(0[1-9]|1[0-2])$"
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_.:-]{1,64}$"
SOP_ID = r"^[a-z0-9][a-z0-9_-]{0,47}$"  # sop/spec.py ID_PATTERN
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (a tab, CR or LF included)
MAX_FEN = 10**12  # ¥10 billion: a sum of 9 million such amounts still fits in 63 bits
YEARS = (2000, 2100)  # dates a preview or a report may name

Userid = Annotated[str, Field(pattern=USERID, description="a WeCom member userid")]
ExternalUserid = Annotated[str, Field(pattern=EXTERNAL_USERID,
                                      description="a customer's external_userid")]
Period = Annotated[str, Field(pattern=PERIOD, description="YYYY-MM (tenant time zone)")]
Key = Annotated[str, Field(pattern=IDEMPOTENCY_KEY, description=(
    "idempotency key: the same key and body answer the stored result (200); the same key "
    "with another body answers 409 with what is stored"))]
Fen = Annotated[int, Field(strict=True, ge=-MAX_FEN, le=MAX_FEN,
                           description="integer fen (1/100 yuan)")]


Text64 = Annotated[str, Field(pattern=PRINTABLE, max_length=64)]
Day = Annotated[str, Field(pattern=r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]  # or "" for none
Text128 = Annotated[str, Field(pattern=PRINTABLE, max_length=128)]
Name = Annotated[str, Field(pattern=PRINTABLE, min_length=1, max_length=64)]
Reason = Annotated[str, Field(pattern=PRINTABLE, min_length=1, max_length=256)]
Store = Annotated[str, Field(pattern=PRINTABLE, min_length=1, max_length=64,
                             description="a store id")]
# 自动通过好友's window: its form is checked by the service (coded refusal channel_hours)
AcceptHours = Annotated[str, Field(pattern=PRINTABLE, max_length=32)]
ACCEPT_HOURS = ("自动通过时段: HH:MM-HH:MM of the tenant's day (the end may come first, past "
                "midnight) in which skip_verify holds; outside it the guide accepts each add. "
                "Only with skip_verify true; \"\" or left out: all day")


class Shape(BaseModel):
    """Requests refuse unknown fields: a typo is a 400, not silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=False)


class Answer(BaseModel):
    """Answers may carry more than documented here (additive changes)."""

    model_config = ConfigDict(extra="allow")


# --- requests -------------------------------------------------------------------------------

class ChannelCreate(Shape):
    # fields each release added, oldest first: an idempotency key stored before them still
    # matches a body that leaves them at their defaults (guidebot/idempotency.py)
    added_later: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("kind",), ("guides", "backup_guides", "daily_limit"),
        ("skip_verify", "auto_accept_hours"))
    guide: Userid | None = Field(None, description="the code's guide (or give `guides`)")
    store: Store | None = None
    campaign: Text64 = ""
    tags: list[Name] = Field(default_factory=list, max_length=20)
    welcome_message: Text64 = ""
    kind: Literal["qr", "link"] = Field(default="qr", description=(
        "qr: a 「联系我」 QR code (add_contact_way); link: a 获客助手 acquisition link "
        "(customer_acquisition/create_link) whose url carries the code's state"))
    guides: list[Userid] = Field(default_factory=list, max_length=100, description=(
        "多人活码: several guides (instead of `guide`); WeCom gives each add to one of them"))
    backup_guides: list[Userid] = Field(default_factory=list, max_length=20, description=(
        "with daily_limit: who serves once every guide reached the limit today"))
    daily_limit: int = Field(default=0, ge=0, le=10_000, description=(
        "QR codes: each guide's adds through the code a day (the tenant's day); a guide who "
        "reached it leaves the code until the next day; 0: no limit"))
    skip_verify: bool = Field(default=True, description=(
        "自动通过好友: WeCom adds a customer without the guide's confirmation; false: the "
        "guide accepts each add"))
    auto_accept_hours: AcceptHours = Field(default="", description=ACCEPT_HOURS)
    key: Key | None = None


class ChannelEdit(Shape):
    """What HQ changes in a channel code; a field left out stays as it is. The code's kind
    and state never change, so the printed QR code keeps working (换人不换码)."""

    guides: list[Userid] | None = Field(None, min_length=1, max_length=100, description=(
        "the code's guides (a code made for one guide stays one guide)"))
    backup_guides: list[Userid] | None = Field(None, max_length=20)
    daily_limit: int | None = Field(None, ge=0, le=10_000)
    store: Annotated[str, Field(pattern=PRINTABLE, max_length=64)] | None = Field(
        None, description='a store id, or "" for none')
    campaign: Text64 | None = None
    tags: list[Name] | None = Field(None, max_length=20)
    welcome_message: Text64 | None = None
    skip_verify: bool | None = None
    auto_accept_hours: AcceptHours | None = Field(None, description=ACCEPT_HOURS)


class ChannelPath(Shape):
    code_id: Annotated[int, Field(ge=1, le=2**31 - 1)]


class TagEdit(Shape):
    guide: Userid = Field(description="the guide whose relation is tagged")
    add: list[Name] = Field(default_factory=list, max_length=20)
    remove: list[Name] = Field(default_factory=list, max_length=20)


class AudienceShape(Shape):
    tags_any: list[Name] = Field(default_factory=list, max_length=100)
    tags_all: list[Name] = Field(default_factory=list, max_length=100)
    tags_none: list[Name] = Field(default_factory=list, max_length=100)
    stores: list[Store] = Field(default_factory=list, max_length=1000)
    guides: list[Userid] = Field(default_factory=list, max_length=1000)
    segment: int | None = Field(default=None, ge=1, le=2**31 - 1, description=(
        "a saved customer segment's id (客户分群): its customers as they match when used"))


class Enroll(Shape):
    """One customer of a guide (`external_userid` and `guide`), or an `audience` alone."""

    external_userid: ExternalUserid | None = None
    guide: Userid | None = None
    audience: AudienceShape | None = None


class DropFire(Shape):
    """HQ sends a content drop now (立即发送), whatever its schedule."""

    key: Annotated[str, Field(pattern=IDEMPOTENCY_KEY, description=(
        "makes the firing once: the same key again queues nothing more"))] | None = None


class DropPath(Shape):
    drop_id: Annotated[str, Field(pattern=SOP_ID)]


FIRING = r"^[0-9A-Za-z:+.T-]{1,40}$"  # an ISO time, or manual:<hex digest>


class DropStop(Shape):
    """HQ stops one firing of a drop (停止群发)."""

    firing: Annotated[str, Field(pattern=FIRING, description=(
        "the firing to stop, as GET …/drops/{drop_id}/sends and POST …/fire name it"))]


class SopStop(Shape):
    """HQ stops one step's tasks of an SOP (停止群发)."""

    step: Annotated[int, Field(ge=1, le=1000, description=(
        "the step, counted from 1 as the console shows it"))]


class SopSwitchSet(Shape):
    """HQ switches an SOP off (as a file's enabled = false: enrollments stop at their next
    step, no one new joins) or on again."""

    enabled: bool
    operator: Text64 = ""


class LinkCreate(Shape):
    guide: Userid
    sku: Text64 = ""
    page: Text128 = Field("", description="mini-program page ending in .html (default: the "
                            "product's page, else the catalog's default_page)")
    campaign: Text64 = ""
    customer: ExternalUserid | None = None
    title: Text64 = Field("", description="card title (default: the product's name, else "
                            "the catalog's default_card_title)")
    pic_media_id: Text128 = ""
    key: Key | None = None


class AdjustmentCreate(Shape):
    guide: Userid
    amount_fen: Fen
    reason: Reason
    operator: Name
    key: Key | None = None


# --- queries and path parameters ------------------------------------------------------------

class PeriodQuery(Shape):
    model_config = ConfigDict(extra="ignore")
    period: Period


class StatementQuery(PeriodQuery):
    format: Literal["json", "csv"] = "json"


class SettleQuery(PeriodQuery):
    operator: Text64 = ""


def _plus_back(raw: Any) -> Any:
    """A '+' offset that a query string turned into a space is put back."""
    return raw.strip().replace(" ", "+") if isinstance(raw, str) and "T" in raw else raw


def _sane_year(at: datetime) -> datetime:
    if not YEARS[0] <= at.year <= YEARS[1]:
        raise ValueError(f"must be within the years {YEARS[0]}–{YEARS[1]}")
    return at


class PreviewQuery(Shape):
    model_config = ConfigDict(extra="ignore")
    added_at: Annotated[datetime, BeforeValidator(_plus_back), AfterValidator(_sane_year),
                        Field(description="ISO 8601, like 2026-11-20T15:00:00+08:00 (no offset: "
                              "the tenant's time zone)")]


class TasksQuery(Shape):
    model_config = ConfigDict(extra="ignore")
    guide: Userid | None = None
    status: Literal["queued", "sending", "sent", "confirmed", "cancelled", "failed", "dead",
                    "done", "pending"] | None = Field(None, description=(
                        "task status (queued, sent, confirmed, cancelled) or delivery status "
                        "(failed, dead)"))
    after: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,400}$")] = Field(
        "", description="the `next` cursor of the page before")
    limit: int = Field(200, ge=1, le=1000)


class CustomerPath(Shape):
    external_userid: ExternalUserid


class SopPath(Shape):
    sop_id: Annotated[str, Field(pattern=SOP_ID)]


class OrderPath(Shape):
    order_no: Name


class CustomersQuery(Shape):
    q: Text64 = Field("", description="part of a name, an external_userid, the state of "
                      "the add, or a guide's WeCom remark or description of the customer")
    tag: Text64 = Field("", description="a corp tag's name the customer carries")
    guide: Annotated[str, Field(pattern=r"^([A-Za-z0-9_.@-]{1,64})?$")] = Field(
        "", description="a guide the customer follows or followed")
    status: Literal["", "following", "lost", "opted_out"] = Field(
        "", description="following: a relation still live; lost: relations, none live; "
        "opted_out: opted out in 微信客服")
    added_from: Day = Field("", description="added on or after this day (YYYY-MM-DD, the "
                            "tenant's time zone)")
    added_to: Day = Field("", description="added on or before this day (YYYY-MM-DD)")
    after: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,400}$")] = Field(
        "", description="the `next` cursor of the page before")
    limit: int = Field(200, ge=1, le=1000)


# --- answers --------------------------------------------------------------------------------

class Follow(Answer):
    userid: str
    state: str
    added_at: str | None
    status: Literal["active", "half", "deleted_by_guide", "deleted_by_customer", "transferred"]
    ended_at: str | None


class Binding(Answer):
    guide: str
    started_at: str | None
    ended_at: str | None
    end_reason: str | None


class ChannelRef(Answer):
    store: str | None
    guide: str
    campaign: str | None


class CustomerOrder(Answer):
    order_no: str
    paid_at: str
    amount_fen: int
    rule: str
    guide: str | None
    store: str | None
    purchase: Literal["first", "repurchase"]


class Propensity(Answer):
    score: float
    parts: dict[str, float]


class Customer(Answer):
    external_userid: str
    name: str
    unionid: str | None
    profile_fetched: bool
    guides: list[Follow]
    exclusive_guide: str | None
    bindings: list[Binding]
    tags: list[str]
    channel: ChannelRef | None
    opted_out_at: str | None = Field(
        default=None, description="when the customer opted out in 微信客服 (no SOP enrolls "
        "them); null when they have not, or HQ undid it")
    orders: list[CustomerOrder]
    propensity: Propensity
    birthday: str | None = Field(default=None, description=(
        '"MM-DD" or "YYYY-MM-DD" as HQ set it (PUT …/customers/{external_userid}/birthday); '
        "null when not known"))


class ListedFollow(Answer):
    guide: str
    status: Literal["active", "half", "deleted_by_guide", "deleted_by_customer", "transferred"]
    added_at: str | None
    ended_at: str | None


class ListedCustomer(Answer):
    external_userid: str
    name: str
    status: Literal["following", "lost", "none"] = Field(
        description="none: known to guidebot (an order, 微信客服) without any relation")
    follows: list[ListedFollow]
    tags: list[str]
    opted_out: bool
    added_at: str
    lost_at: str | None = Field(
        default=None, description="lost: when their last relation ended; otherwise null")


class CustomerList(Answer):
    customers: list[ListedCustomer]
    next: str | None = Field(description="pass as `after` for the next page; null on the last")


class Guide(Answer):
    userid: str
    name: str
    store: str | None
    active_customers: int


class Guides(Answer):
    guides: list[Guide]


class Channel(Answer):
    id: int
    kind: Literal["qr", "link"]
    state: str
    config_id: str = Field(description="WeCom's id: the contact way's config_id, or the "
                           "link's link_id")
    qr_code: str = Field(description="the QR image's url, or the link to share "
                         "(with customer_channel)")
    guide: str = Field(description="the code's (first) guide")
    guides: list[str] = Field(description="every guide of the code")
    backup_guides: list[str]
    daily_limit: int = Field(description="each guide's adds a day through the code; 0: none")
    serving: list[str] = Field(description="the members the code offers now")
    skip_verify: bool = Field(True, description="自动通过好友 (inside auto_accept_hours)")
    auto_accept_hours: str | None = Field(None, description=ACCEPT_HOURS)
    skip_verify_now: bool = Field(True, description="skip_verify as WeCom was last told")
    deleted_at: str | None = Field(None, description="when HQ deleted it (it brought no one "
                                   "since)")
    wecom_status: Literal["unavailable", "deleted"] | None = Field(None, description=(
        "a link WeCom said (customer_acquisition event) became unavailable "
        "(link_unavailable) or was deleted there (delete_link); null while it said nothing"))
    wecom_status_at: str | None = Field(None, description="when WeCom said it")
    store: str | None
    campaign: str | None
    tags: list[str]
    welcome_message: str | None
    created_at: str | None


class ListedChannel(Channel):
    adds: int = Field(description="relations the code brought (adds through it)")
    following: int = Field(description="of those, still active")
    adds_today: dict[str, int] = Field(default_factory=dict, description=(
        "a code with a daily limit: each guide's adds through it today (the tenant's day)"))


class Channels(Answer):
    channels: list[ListedChannel]


class QuotaBatch(Answer):
    expire_date: str = Field(description="when this part of the quota expires (ISO 8601, UTC)")
    day: str = Field(description="that day in the tenant's time zone (YYYY-MM-DD)")
    balance: int = Field(description="links left in this part")


class AcquisitionQuery(Shape):
    refresh: bool = Field(default=False, description=(
        "read the quota from WeCom now (customer_acquisition_quota) instead of answering the "
        "last reading"))


class AcquisitionQuota(Answer):
    """The paid 获客助手 link quota as guidebot last read it (daily, on demand, and when
    WeCom says it runs low)."""

    read_at: str | None = Field(description="when it was read; null: never read")
    total: int | None = Field(description="the quota bought")
    balance: int | None = Field(description="what is left")
    quota_list: list[QuotaBatch] = Field(description="each part of the balance with its "
                                         "expiry, soonest first")
    next_expiry: QuotaBatch | None = Field(description=(
        "the next part to expire (the first with a balance, else the first to come)"))
    level: Literal["unread", "ok", "low", "exhausted"] = Field(description=(
        "low: balance ≤ 10 % of total or ≤ 50; exhausted: 0"))
    warning: Literal["low", "exhausted"] | None = Field(description=(
        "the level when it is low or exhausted and the tenant has link codes, else null"))
    links: int = Field(description="the tenant's link codes not deleted")


class LibraryProblem(Answer):
    file: str
    line: int | None
    message: str


class Sop(Answer):
    id: str
    title: str
    enabled: bool
    version: int
    trigger: dict[str, Any]
    exit: list[str]
    quiet_hours: str
    on_quota: Literal["defer", "skip"]
    steps: list[dict[str, Any]]
    enrollments: dict[str, int]
    switched_off: bool = Field(False, description="HQ switched it off (POST …/switch)")


class DropFired(Answer):
    drop: str
    firing: str = Field(description="manual:<digest of the key, or of the time without one>")
    tasks: int = Field(description="tasks queued by this call (0 when the key fired before)")


class DropFiring(Answer):
    firing: str = Field(description="its scheduled time (ISO), or manual:<digest>")
    at: datetime = Field(description="when its first task was made")
    tasks: int
    recipients: int = Field(description="customers (or groups) the tasks were made for")
    reached: int = Field(description="customers (or groups) WeCom says received it")
    waiting: int = Field(description="tasks not in WeCom yet")
    sent: int = Field(description="tasks in WeCom its guide has not sent yet")
    confirmed: int
    cancelled: int = Field(description="tasks stopped, or with every customer gone")
    failed: int
    over_quota: int = Field(description="customers left out: their 群发 quota was used")
    duplicates: int = Field(description="relations left out: their customer is reached "
                                        "through another guide (one 群发 each)")
    stopped: bool = Field(description="HQ stopped this firing")
    can_stop: bool = Field(description="a stop would still change something")


class DropSends(Answer):
    drop: str
    firings: list[DropFiring] = Field(description="the latest firings, newest first")


class DropStopped(Answer):
    drop: str
    firing: str
    not_sent: int = Field(description="tasks cancelled before reaching WeCom")
    cancelled_in_wecom: int = Field(description="群发 tasks WeCom cancelled for their guide")
    already_sent: int = Field(description="tasks their guide had sent (or moments WeCom "
                                          "holds): they stay sent")
    pending: int = Field(description="stopped tasks WeCom has not cancelled yet (the call "
                                     "is in flight or retried)")
    notices_cancelled: int = Field(description="queued app messages telling a guide of a "
                                               "群发 to send, cancelled with their task")


class SopStepStopped(Answer):
    sop: str
    step: int
    not_sent: int = Field(description="tasks cancelled before reaching WeCom (their steps "
                                      "cancelled)")
    cancelled_in_wecom: int = Field(description="群发 tasks WeCom cancelled for their guide")
    already_sent: int = Field(description="tasks their guide had sent, reminders sent and "
                                          "moments WeCom holds: they stay sent")
    pending: int = Field(description="stopped tasks WeCom has not cancelled yet")
    notices_cancelled: int = Field(description="queued app messages telling a guide of a "
                                               "群发 to send, cancelled with their task")


class SopSwitched(Answer):
    sop: str
    enabled: bool = Field(description="in force now: the file enables it and it is not "
                                      "switched off")
    switched_off: bool


class Sops(Answer):
    sops: list[Sop]
    library_errors: list[LibraryProblem] = Field(description=(
        "problems of the newest content_library edit that failed validation (the library in "
        "force stays); empty when none"))


class PreviewStep(Answer):
    index: int
    at: str | None
    channel: Literal["welcome", "guide_task", "reminder", "moment"]


class Preview(Answer):
    sop: str
    version: int
    timezone: str
    added_at: str
    steps: list[PreviewStep]


class Enrolled(Answer):
    sop: str
    enrollment_id: int | None = None
    created: bool | None = Field(None, description="false (answer 200) when already enrolled")
    enrolled: int | None = Field(None, description="audience: how many relations were enrolled")
    audience: dict[str, list[str] | int | None] | None = None


class Delivery(Answer):
    status: str
    attempts: int
    last_error: str | None
    next_try_at: str | None


class Task(Answer):
    id: int
    kind: str
    source: str
    version: int | None
    step: int | None
    guide: str
    message: str
    recipients: int
    status: str
    msgid: str | None
    confirmed: int
    reminders: int
    created_at: str | None
    updated_at: str | None
    note: str | None
    delivery: Delivery | None = Field(description="the outbox row: status (done, failed, "
                                      "dead, …), attempts, last_error, next_try_at")
    detail: dict[str, Any] = Field(description="kind-specific: reminders sent; for moments the "
                                   "job result (job_status, moment_id, invalid_senders, …)")


class Tasks(Answer):
    tasks: list[Task]
    next: str | None = Field(description="pass as `after` for the next page; null on the last")


class MiniProgram(Answer):
    title: str
    pic_media_id: str
    appid: str
    page: str


class Card(Answer):
    msgtype: Literal["miniprogram"]
    miniprogram: MiniProgram


class Link(Answer):
    token: str
    page: str
    card: Card


class Attribution(Answer):
    rule: str
    guide: str | None
    store: str | None
    evidence: Any


class Order(Answer):
    order_no: str
    paid_at: str
    customer: dict[str, str | None]
    store_id: str | None
    tracking: str | None
    amount_fen: int
    attribution: Attribution
    rules: dict[str, Any] | None
    lines: list[dict[str, Any]]
    commission_fen: int
    refunds: list[dict[str, Any]]
    ledger: list[dict[str, Any]]


class StatementRow(Answer):
    guide: str
    earned_fen: int
    clawback_fen: int
    adjustment_fen: int
    net_fen: int
    orders: int


class Statement(Answer):
    period: str
    timezone: str
    settled: bool
    statements: list[StatementRow]


class Settled(Answer):
    period: str
    settled: bool
    net_fen: int
    guides: int


class Adjustment(Answer):
    key: str
    period: str
    guide: str
    amount_fen: int
    reason: str
    operator: str


class StoreRow(Answer):
    store: str
    orders: int
    gmv_fen: int


class StoreReport(Answer):
    period: str
    stores: list[StoreRow]


class ValueRow(Answer):
    first_purchases: int
    repurchases: int


class ValueReport(Answer):
    period: str
    guides: list[ValueRow]
    stores: list[ValueRow]


class Problem(BaseModel):
    """Every refusal of the admin API."""

    error: str = Field(description="`<field>: <reason>`, or the reason alone")
    field: str | None = Field(description="the request field at fault (body, a query or path "
                              "parameter, or a dotted path inside the body)")
    reason: str
    code: str | None = Field(None, description="what kind of refusal, where it has a name "
                             "(e.g. profile.choice)")
    stored: dict[str, Any] | None = Field(None, description="409 on an idempotency key: "
                                          "the stored result")


class KfLinkCreate(Shape):
    guide: Userid
    open_kfid: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                    description="a 微信客服 account listed in open_kfids")]


class KfLink(Answer):
    url: str
    token: str
    guide: str
    open_kfid: str
