"""获客助手 customer-acquisition links (FACTS-next §F): the links a corp makes, the members
each one hands customers to, and the customers who came through it, with the customer_channel
they came by; the links' clicks and new customers (customer_acquisition/statistic), the
corp's paid quota (customer_acquisition_quota, set by a control route: creating a link does
not draw on it, assumed) and the customer_acquisition events, sent by a control route."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from guidebot.sandbox import errors, params
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.models import JSON

if TYPE_CHECKING:  # the tenant holds the links
    from guidebot.sandbox.tenant import TenantState

log = logging.getLogger(__name__)

LINKS_MAX = 100  # 41095 获客链接数量超过上限 (FACTS-next §F); the number: not in FACTS (assumed)
LINK_NAME_MAX_CHARS = 30  # not in FACTS (assumed): as contact_way's remark
RANGE_USERS_MAX = 500  # FACTS-next §F [secondary]; enforced (assumed), on user_list only
CHANNEL_MAX_BYTES = 64  # FACTS-next §F: customer_channel ≤ 64 B
SKIP_VERIFY_DEFAULT = True  # FACTS-next §F [copy WxJava]
MARK_SOURCE_DEFAULT = False  # not in FACTS (assumed)
PRIORITY_TYPES = (1, 2)  # not in FACTS beyond the sample's 2 (assumed)
# WeCom's link url is https://work.weixin.qq.com/ca/… (FACTS-next §F); .invalid: a page the
# sandbox never serves, as contact_way.QR_BASE.
URL_BASE = "https://sandbox.invalid/ca/"
CHANNEL_KEY = "customer_channel"  # FACTS-next §F: appended to the url; comes back as State
# [mem] follow_user.add_way 16 通过获客链接添加: not in FACTS (assumed)
ADD_WAY_ACQUISITION = 16
CHAT_NOT_STARTED = 0  # chat_status 0 客户未发消息 (FACTS-next §F); the sandbox never sets 1
# The quota a tenant starts with (the sandbox's choice): this many links, all expiring a year
# after the quota is first read, until the control route sets another.
QUOTA_DEFAULT = 1000
QUOTA_DEFAULT_LIFE_S = 365 * 86400
# customer_acquisition/statistic: WeCom's longest range is not in FACTS; the sandbox refuses a
# range longer than this with 40058 (assumed), so that a client's handling of it is tested.
STATISTIC_MAX_S = 30 * 86400


@dataclass(slots=True)
class Arrival:
    """A customer who added a member through a link (customer_acquisition/customer)."""

    external_userid: str
    userid: str
    state: str  # the customer_channel, "" when the url carried none
    chat_status: int = CHAT_NOT_STARTED
    at: int = 0  # when they added (Unix s; statistic counts the new customers by it)


@dataclass
class AcquisitionLink:
    link_id: str
    link_name: str
    url: str
    create_time: int
    user_list: list[str]
    department_list: list[int]
    skip_verify: bool = SKIP_VERIFY_DEFAULT
    mark_source: bool = MARK_SOURCE_DEFAULT
    priority_option: JSON = field(default_factory=dict)  # {} or as given, checked
    # (external_userid, userid) → the customer's latest arrival, in first-arrival order
    customers: dict[tuple[str, str], Arrival] = field(default_factory=dict)
    clicks: list[int] = field(default_factory=list)  # when customers opened the link (Unix s)


@dataclass
class Quota:
    """The corp's paid link quota (customer_acquisition_quota). `batches` None: the default
    (QUOTA_DEFAULT links expiring a year after the first reading)."""

    total: int = QUOTA_DEFAULT
    balance: int = QUOTA_DEFAULT
    batches: list[tuple[int, int]] | None = None  # (expire_date Unix s, balance)

    def answer(self, now: float) -> JSON:
        if self.batches is None:
            self.batches = [(int(now) + QUOTA_DEFAULT_LIFE_S, self.balance)]
        return {"total": self.total, "balance": self.balance,
                "quota_list": [{"expire_date": at, "balance": n} for at, n in self.batches]}


def set_quota(quota: Quota, body: Mapping[str, Any]) -> JSON:
    """The control route's {total, balance, quota_list?: [{expire_date, balance}]} (numbers
    ≥ 0; without quota_list the whole balance expires a year on). ControlError 400 otherwise."""
    def count(value: object, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ControlError(400, f"{key} must be an integer ≥ 0")
        return value

    total = count(body.get("total"), "total")
    balance = count(body.get("balance"), "balance")
    given = body.get("quota_list")
    if given is not None and not isinstance(given, list):
        raise ControlError(400, "quota_list must be a list")
    batches = None if given is None else [
        (count(q.get("expire_date") if isinstance(q, dict) else None, "expire_date"),
         count(q.get("balance") if isinstance(q, dict) else None, "quota_list balance"))
        for q in given]
    quota.total, quota.balance, quota.batches = total, balance, batches
    return {"total": total, "balance": balance, "quota_list": batches}


def statistic(link: AcquisitionLink, start: int, end: int) -> JSON:
    """Clicks on the link and customers who added through it with start ≤ time ≤ end (a
    customer counted once however many members they added)."""
    new = {a.external_userid for a in link.customers.values() if start <= a.at <= end}
    return {"click_link_customer_cnt": sum(start <= at <= end for at in link.clicks),
            "new_customer_cnt": len(new)}


def _flag(body: Mapping[str, Any], key: str, current: bool) -> bool:
    value = body.get(key, current)
    if not isinstance(value, bool):
        raise ApiError(errors.INVALID_PARAM, f"invalid {key}: must be true or false")
    return value


def _users(tenant: TenantState, value: Mapping[str, Any], key: str,
           max_items: int | None = None) -> list[str]:
    """Well-formed userids (40003 otherwise, as everywhere) of members who have not left the
    corp: a resigned one answers 40058 (not in FACTS, assumed). Repeats are dropped."""
    users = [tenant.member(u) for u in params.str_list(value, key, max_items=max_items)]
    for userid in users:
        if tenant.directory.is_resigned(userid):
            raise ApiError(errors.INVALID_PARAM, f"invalid {key}: {userid} has left the corp")
    return list(dict.fromkeys(users))


def _departments(tenant: TenantState, value: Mapping[str, Any]) -> list[int]:
    """Departments of the address book (directory.py); an unknown one answers 40058 (not in
    FACTS, assumed)."""
    found = value.get("department_list") or []
    if not isinstance(found, list):
        raise ApiError(errors.INVALID_PARAM, "invalid department_list: must be a list")
    for department in found:
        if not isinstance(department, int) or isinstance(department, bool) \
                or department not in tenant.directory.departments:
            raise ApiError(errors.INVALID_PARAM, f"invalid department_list: {department!r}")
    return list(dict.fromkeys(found))


def _range(tenant: TenantState, body: Mapping[str, Any]) -> tuple[list[str], list[int]]:
    """range.user_list (≤ 500) and range.department_list; one of them must name someone
    (40058 otherwise: not in FACTS, assumed)."""
    given = params.obj(body, "range")
    users = _users(tenant, given, "user_list", RANGE_USERS_MAX)
    departments = _departments(tenant, given)
    if not users and not departments:
        raise ApiError(errors.INVALID_PARAM, "invalid range: no user_list or department_list")
    return users, departments


def _priority(tenant: TenantState, body: Mapping[str, Any]) -> JSON:
    """priority_option {priority_type 1|2, priority_userid_list}, stored as given once checked;
    the sandbox does not apply it when it picks a member (assumed)."""
    given = params.obj(body, "priority_option")
    if not given:
        return {}
    return {"priority_type": params.integer(given, "priority_type", 0, low=PRIORITY_TYPES[0],
                                            high=PRIORITY_TYPES[-1]),
            "priority_userid_list": _users(tenant, given, "priority_userid_list")}


def apply_fields(tenant: TenantState, link: AcquisitionLink, body: Mapping[str, Any]) -> None:
    """Check every field the request gives, then set them on `link` (what is not given is
    kept; a given range replaces the whole range: assumed)."""
    name = link.link_name
    if "link_name" in body or not name:
        name = params.text(body, "link_name", required=True, max_chars=LINK_NAME_MAX_CHARS)
    users, departments = link.user_list, link.department_list
    if "range" in body or not (users or departments):
        users, departments = _range(tenant, body)
    skip_verify = _flag(body, "skip_verify", link.skip_verify)
    mark_source = _flag(body, "mark_source", link.mark_source)
    priority = _priority(tenant, body) if "priority_option" in body else link.priority_option
    link.link_name, link.user_list, link.department_list = name, users, departments
    link.skip_verify, link.mark_source, link.priority_option = skip_verify, mark_source, priority


def find(tenant: TenantState, link_id: str) -> AcquisitionLink:
    """A live link, or 40058 (an unknown link_id's code is not in FACTS: assumed)."""
    link = tenant.acquisition_links.get(link_id)
    if link is None:
        raise ApiError(errors.ACQUISITION_LINK_NOT_FOUND, f"invalid link_id {link_id}")
    return link


def link_json(link: AcquisitionLink) -> JSON:
    """customer_acquisition/get's answer: link (create_link's fields, FACTS-next §F, with
    skip_verify and mark_source), range and priority_option; the shape past create_link's is
    not in FACTS (assumed)."""
    return {"link": {"link_id": link.link_id, "link_name": link.link_name, "url": link.url,
                     "create_time": link.create_time, "skip_verify": link.skip_verify,
                     "mark_source": link.mark_source},
            "range": {"user_list": list(link.user_list),
                      "department_list": list(link.department_list)},
            "priority_option": dict(link.priority_option)}


def arrival_json(arrival: Arrival) -> JSON:
    return {"external_userid": arrival.external_userid, "userid": arrival.userid,
            "chat_status": arrival.chat_status, "state": arrival.state}


def to_json(link: AcquisitionLink) -> JSON:
    """The state view of a link: get's answer and the customers who came through it."""
    return {**link_json(link), "customers": [arrival_json(a) for a in link.customers.values()],
            "clicks": len(link.clicks)}


def _in_range(tenant: TenantState, link: AcquisitionLink) -> list[str]:
    """Who the link hands customers to: user_list, then the members of department_list (and
    the departments under them), leaving out those who have left the corp."""
    directory = tenant.directory
    below = {d for top in link.department_list for d in directory.below(top)}
    staff = [m.userid for m in directory.members.values() if below & set(m.department)]
    return [u for u in dict.fromkeys([*link.user_list, *staff]) if not directory.is_resigned(u)]


def opened(tenant: TenantState, url: str, userid: object
           ) -> tuple[AcquisitionLink, str, str]:
    """A customer opens `url` (a link's url, with ?customer_channel=… or not): the link, the
    member they add (`userid` when the link hands customers to them, else the first who is)
    and the customer_channel. ControlError 400 when the url names no live link, the channel
    is over 64 bytes or nobody in the range is left."""
    if userid is not None and not isinstance(userid, str):
        raise ControlError(400, "userid must be a string")
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    link = tenant.acquisition_links.get(base.removeprefix(URL_BASE))
    if link is None or link.url != base:
        raise ControlError(400, f"{url!r} is not the url of a live acquisition link")
    channel = parse_qs(parts.query).get(CHANNEL_KEY, [""])[0]
    if len(channel.encode()) > CHANNEL_MAX_BYTES:
        raise ControlError(400, f"{CHANNEL_KEY} is longer than {CHANNEL_MAX_BYTES} bytes")
    members = _in_range(tenant, link)
    if not members:
        raise ControlError(400, f"link {link.link_id} names no member who is still in the corp")
    chosen = userid if isinstance(userid, str) and userid in members else members[0]
    return link, chosen, channel


def record(tenant: TenantState, link: AcquisitionLink, fields: Mapping[str, Any]) -> None:
    """The add_external_contact a link brought: the customer is listed by the link and the
    follow's add_way is 16 (assumed)."""
    userid, external_userid = str(fields["UserID"]), str(fields["ExternalUserID"])
    state = str(fields.get("State", ""))
    link.customers[(external_userid, userid)] = Arrival(external_userid, userid, state,
                                                        at=int(str(fields["CreateTime"])))
    tenant.follow(userid, external_userid).add_way = ADD_WAY_ACQUISITION
    log.info("tenant %s: a customer added %s through link %s", tenant.id, userid, link.link_id)
