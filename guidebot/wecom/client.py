"""Async WeCom API client: typed errors, one token refresh, bounded backoff, rate limits."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from guidebot import lanes
from guidebot.backoff import WECOM_RATE_LIMIT, Backoff
from guidebot.errors import (
    NoRelation,
    TagNameTaken,
    TagNotOurs,
    WeComApiError,
    WeComCredentialError,
    WeComError,
    WeComRateLimited,
    WeComTokenError,
    WeComTransportError,
    WelcomeWindowClosed,
)
from guidebot.settings import TenantSettings
from guidebot.wecom.ratelimit import RateLimiter, shared_limiter
from guidebot.wecom.tokens import InMemoryTokenStore, TokenKeeper, TokenStore
from guidebot.wecom.transport import Files, Transport

__all__ = [
    "BackoffConfig",
    "InMemoryTokenStore",
    "RateLimiter",
    "TokenStore",
    "WeComClient",
    "error_for",
]

logger = logging.getLogger(__name__)

TOKEN_CODES = frozenset({40014, 42001})
RATE_LIMIT_CODES = frozenset({-1, 45009, 45033})
# 40001 secret, 40013 corpid, 40056 agentid, 40091 secret revoked, 41002/41004 missing ones.
CREDENTIAL_CODES = frozenset({40001, 40013, 40056, 40091, 41002, 41004})
WELCOME_WINDOW_CLOSED = 41051
NO_RELATION = 84061  # FACTS §3.12: 不存在外部联系人的关系
TAG_NAME_TAKEN = 40071  # FACTS §3.12: a tag or group of that name exists
# An app may edit or delete only the tags it created; 301002 from a third-party summary of
# WeCom's codes: assumed, not documented in FACTS.
TAG_NOT_OURS = 301002


BackoffConfig = Backoff  # the client's name for guidebot.backoff.Backoff


def answer_time(seconds: Any) -> datetime | None:
    """A unix time in a WeCom answer (takeover_time, join_time, …) as an aware UTC time;
    None for 0, a missing value or one that is not a number."""
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(value, UTC) if value > 0 else None


def error_for(errcode: int, errmsg: str, *, path: str = "") -> WeComError:
    """The guidebot exception for a non-zero WeCom errcode."""
    if errcode in TOKEN_CODES:
        return WeComTokenError(errcode, errmsg, path=path)
    if errcode in RATE_LIMIT_CODES:
        return WeComRateLimited(errcode, errmsg, path=path)
    if errcode in CREDENTIAL_CODES:
        return WeComCredentialError(errcode, errmsg, path=path)
    if errcode == WELCOME_WINDOW_CLOSED:
        return WelcomeWindowClosed(errcode, errmsg, path=path)
    if errcode == NO_RELATION:
        return NoRelation(errcode, errmsg, path=path)
    if errcode == TAG_NAME_TAKEN:
        return TagNameTaken(errcode, errmsg, path=path)
    if errcode == TAG_NOT_OURS:
        return TagNotOurs(errcode, errmsg, path=path)
    return WeComApiError(errcode, errmsg, path=path)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: dict[str, Any]
    body: dict[str, Any] | None = None
    files: Files | None = None
    download: bool = False  # the answer is a file (media/get), not JSON


class WeComClient:
    """One tenant's WeCom API, async. Every call goes through the rate limiter and the token
    keeper; 40014/42001 refresh the token once, 45009/45033/-1 back off `attempts` times."""

    def __init__(
        self,
        tenant: TenantSettings,
        *,
        tokens: TokenStore,
        backoff: Backoff = WECOM_RATE_LIMIT,
        timeout_s: float = 10.0,
        report: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        self.tenant = tenant
        self._backoff = backoff
        self._http = Transport(tenant.api_base, timeout_s, error_for)
        self._limiter = shared_limiter(tenant.id, tenant.quotas.api_calls_per_min)
        self._tokens = TokenKeeper(tenant.id, tokens, self._fetch_token)
        if report is not None:
            self.observe_calls(report)

    async def close(self) -> None:
        await self._http.close()

    def observe_calls(self, report: Callable[[str, str, int | None], None]) -> None:
        """Have `report(tenant, path, errcode)` called after every HTTP call (gettoken too):
        errcode 0 for success, None when WeCom gave no usable answer."""
        self._http.on_result = lambda path, errcode: report(self.tenant.id, path, errcode)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call `path` (relative to api_base, e.g. "externalcontact/get"); errcode 0 or raise."""
        if method.upper() not in ("GET", "POST"):
            raise ValueError(f"WeCom APIs are GET or POST, not {method}")
        return await self._call(_Request(method.upper(), path, dict(params or {}), json))

    # -- typed wrappers -------------------------------------------------------------------

    async def get_external_contact(
        self, external_userid: str, *, cursor: str = ""
    ) -> dict[str, Any]:
        """One page of externalcontact/get: `external_contact`, `follow_user` and
        `next_cursor` (non-empty while follow_user has more pages). Read a whole customer
        with guidebot.contacts.profiles.read_contact, which follows the cursor."""
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        return await self.call("GET", "externalcontact/get", params=params)

    async def list_external_contacts(self, userid: str) -> dict[str, Any]:
        return await self.call("GET", "externalcontact/list", params={"userid": userid})

    async def batch_get_by_user(
        self, userids: Sequence[str], *, cursor: str = "", limit: int = 100
    ) -> dict[str, Any]:
        body = {"userid_list": list(userids), "cursor": cursor, "limit": limit}
        return await self.call("POST", "externalcontact/batch/get_by_user", json=body)

    async def get_corp_tag_list(
        self, tag_ids: Iterable[str] | None = None, group_ids: Iterable[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if tag_ids is not None:
            body["tag_id"] = list(tag_ids)
        if group_ids is not None:
            body["group_id"] = list(group_ids)
        return await self.call("POST", "externalcontact/get_corp_tag_list", json=body)

    async def add_corp_tag(
        self, *, group_name: str, tags: Sequence[str], group_id: str | None = None,
        orders: Sequence[int] | None = None, group_order: int | None = None,
    ) -> dict[str, Any]:
        """New tags in a group (group_id, else group_name: WeCom makes the group if new);
        answers `tag_group` with the new ids. `orders` pairs with `tags`."""
        body: dict[str, Any] = {"group_name": group_name, "tag": [
            {"name": t, **({"order": orders[i]} if orders is not None else {})}
            for i, t in enumerate(tags)]}
        if group_id:
            body["group_id"] = group_id
        if group_order is not None:
            body["order"] = group_order
        return await self.call("POST", "externalcontact/add_corp_tag", json=body)

    async def edit_corp_tag(self, tag_or_group_id: str, *, name: str | None = None,
                            order: int | None = None) -> dict[str, Any]:
        """Rename or reorder a tag or a tag group (only what this app created: 301002)."""
        body: dict[str, Any] = {"id": tag_or_group_id}
        if name is not None:
            body["name"] = name
        if order is not None:
            body["order"] = order
        return await self.call("POST", "externalcontact/edit_corp_tag", json=body)

    async def del_corp_tag(self, *, tag_ids: Sequence[str] = (),
                           group_ids: Sequence[str] = ()) -> dict[str, Any]:
        """Delete tags and/or whole groups (a group left without tags is deleted too)."""
        body = {"tag_id": list(tag_ids), "group_id": list(group_ids)}
        return await self.call("POST", "externalcontact/del_corp_tag", json=body)

    async def mark_tag(
        self,
        *,
        userid: str,
        external_userid: str,
        add_tag: Iterable[str] = (),
        remove_tag: Iterable[str] = (),
    ) -> dict[str, Any]:
        body = {"userid": userid, "external_userid": external_userid,
                "add_tag": list(add_tag), "remove_tag": list(remove_tag)}
        return await self.call("POST", "externalcontact/mark_tag", json=body)

    async def remark(self, *, userid: str, external_userid: str, remark: str,
                     description: str) -> dict[str, Any]:
        """externalcontact/remark: the member's remark and description of the customer (the
        sample body also carries remark_company, remark_mobiles and remark_pic_mediaid, not
        sent). WeCom raises no edit_external_contact for an API edit (FACTS §1.1). Whether a
        field left out is kept or cleared is not in FACTS: both are always sent."""
        body = {"userid": userid, "external_userid": external_userid, "remark": remark,
                "description": description}
        return await self.call("POST", "externalcontact/remark", json=body)

    async def add_contact_way(
        self,
        *,
        users: Sequence[str],
        state: str,
        remark: str = "",
        skip_verify: bool = True,
        scene: int = 2,
        type_: int = 1,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type_, "scene": scene, "skip_verify": skip_verify,
                                "state": state, "user": list(users)}
        if remark:
            body["remark"] = remark
        return await self.call("POST", "externalcontact/add_contact_way", json=body)

    async def update_contact_way(self, *, config_id: str, users: Sequence[str], state: str,
                                 remark: str = "",
                                 skip_verify: bool | None = None) -> dict[str, Any]:
        """externalcontact/update_contact_way: the members a 多人 contact way offers now.
        FACTS names the API only (wechatpy's update_contact_way); its body is taken to be
        add_contact_way's with the config_id, and whether fields left out are kept or reset
        is not in FACTS, so the state and remark are sent again [unconfirmed]. skip_verify
        (自动通过好友) is add_contact_way's field: that update_contact_way takes it, and
        whether it would take it alone, is NOT confirmed, so it rides with the whole body
        (members, state, remark) each time it is given [unconfirmed]."""
        body: dict[str, Any] = {"config_id": config_id, "state": state, "user": list(users)}
        if remark:
            body["remark"] = remark
        if skip_verify is not None:
            body["skip_verify"] = skip_verify
        return await self.call("POST", "externalcontact/update_contact_way", json=body)

    async def del_contact_way(self, *, config_id: str) -> dict[str, Any]:
        """externalcontact/del_contact_way: the code stops working (FACTS names the API;
        its body `{config_id}` as wechatpy's del_contact_way sends it)."""
        return await self.call("POST", "externalcontact/del_contact_way",
                               json={"config_id": config_id})

    async def delete_acquisition_link(self, *, link_id: str) -> dict[str, Any]:
        """customer_acquisition/delete_link {link_id} (FACTS-next §F)."""
        return await self.call("POST", "externalcontact/customer_acquisition/delete_link",
                               json={"link_id": link_id})

    async def send_welcome_msg(
        self, *, welcome_code: str, text: str | None, attachments: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        """41051 (code used, or the 20 s window passed) raises WelcomeWindowClosed."""
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text is not None:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = list(attachments)
        return await self.call("POST", "externalcontact/send_welcome_msg", json=body)

    async def add_msg_template(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "externalcontact/add_msg_template", json=body)

    async def transfer_customer(self, *, resigned: bool, handover: str, takeover: str,
                                external_userids: Sequence[str],
                                message: str = "") -> dict[str, Any]:
        """在职继承 (externalcontact/transfer_customer) or 离职继承 (…/resigned/…), ≤ 100
        customers; each customer's errcode comes back in `customer[]`, not as an error
        (0: started, WeCom completes it after 24 h). FACTS-next §D."""
        body: dict[str, Any] = {"handover_userid": handover, "takeover_userid": takeover,
                                "external_userid": list(external_userids)}
        if message and not resigned:  # transfer_success_msg exists for on-job only
            body["transfer_success_msg"] = message
        path = ("externalcontact/resigned/transfer_customer" if resigned
                else "externalcontact/transfer_customer")
        return await self.call("POST", path, json=body)

    async def transfer_result(self, *, resigned: bool, handover: str, takeover: str,
                              cursor: str = "") -> dict[str, Any]:
        """One page (≤ 1000) of a handover → takeover pair's transfers: status 1 done,
        2 waiting, 3 refused, 4 takeover at its limit, 5 no record. FACTS-next §D."""
        path = ("externalcontact/resigned/transfer_result" if resigned
                else "externalcontact/transfer_result")
        return await self.call("POST", path, json={
            "handover_userid": handover, "takeover_userid": takeover, "cursor": cursor})

    async def get_unassigned_list(self, *, cursor: str = "",
                                  page_size: int = 1000) -> dict[str, Any]:
        """One page of resigned members' customers not yet reassigned. FACTS-next §D."""
        return await self.call("POST", "externalcontact/get_unassigned_list", json={
            "page_id": 0, "cursor": cursor, "page_size": page_size})

    async def list_group_chats(self, *, cursor: str = "", limit: int = 1000,
                               owners: Sequence[str] = ()) -> dict[str, Any]:
        """One page of customer groups (externalcontact/groupchat/list, status_filter 0):
        `group_chat_list[]{chat_id, status}`, `next_cursor`. `owners` (≤ 100) is required by
        WeCom when the app sees more than 1,000 members (81017). FACTS-next §C.1."""
        body: dict[str, Any] = {"status_filter": 0, "cursor": cursor, "limit": limit}
        if owners:
            body["owner_filter"] = {"userid_list": list(owners)}
        return await self.call("POST", "externalcontact/groupchat/list", json=body)

    async def get_group_chat(self, chat_id: str) -> dict[str, Any]:
        """A customer group with its members (externalcontact/groupchat/get, need_name 0:
        names come from the customers guidebot knows). FACTS-next §C.2."""
        return await self.call("POST", "externalcontact/groupchat/get",
                               json={"chat_id": chat_id, "need_name": 0})

    # 群活码 (客户群「加入群聊」管理): NOT in FACTS. The paths and bodies below are taken from
    # public third-party summaries of WeCom's doc and are not confirmed: add_join_way
    # {scene 1 小程序插件 | 2 二维码插件, remark ≤ 30, auto_create_room 0|1, room_base_name,
    # room_base_id, chat_id_list 1–5, state ≤ 30} → config_id; get_join_way {config_id} →
    # join_way{…, qr_code}; update_join_way takes add's fields with the config_id (whether a
    # field left out is kept is not known, so every field is sent each time); del_join_way
    # {config_id}.
    async def add_join_way(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "externalcontact/groupchat/add_join_way", json=body)

    async def get_join_way(self, config_id: str) -> dict[str, Any]:
        return await self.call("POST", "externalcontact/groupchat/get_join_way",
                               json={"config_id": config_id})

    async def update_join_way(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "externalcontact/groupchat/update_join_way", json=body)

    async def del_join_way(self, config_id: str) -> dict[str, Any]:
        return await self.call("POST", "externalcontact/groupchat/del_join_way",
                               json={"config_id": config_id})

    async def transfer_group_chats(self, *, resigned: bool, chat_ids: Sequence[str],
                                   new_owner: str) -> dict[str, Any]:
        """Hand customer groups (≤ 100) to a new owner: groupchat/transfer when the owner
        resigned, groupchat/onjob_transfer otherwise; the groups WeCom refused come back in
        `failed_chat_list[]{chat_id, errcode}`, not as an error. FACTS-next §C.6."""
        path = ("externalcontact/groupchat/transfer" if resigned
                else "externalcontact/groupchat/onjob_transfer")
        return await self.call("POST", path, json={"chat_id_list": list(chat_ids),
                                                   "new_owner": new_owner})

    async def group_welcome_template(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """externalcontact/group_welcome_template/{add, edit, get, del} (FACTS-next §C.4):
        add answers `template_id`; the tenant's agentid is filled in."""
        if op not in ("add", "edit", "get", "del"):
            raise ValueError(f"no group_welcome_template/{op}")
        if op != "get":
            body = {"agentid": self.tenant.agent_id, **body}
        return await self.call("POST", f"externalcontact/group_welcome_template/{op}",
                               json=body)

    async def create_acquisition_link(self, *, name: str, users: Sequence[str],
                                      skip_verify: bool = True) -> dict[str, Any]:
        """A 获客助手 link (externalcontact/customer_acquisition/create_link) for these
        members: `link{link_id, url}`. A customer who adds through `url` +
        `customer_channel=<state>` comes back with that State. FACTS-next §F."""
        return await self.call("POST", "externalcontact/customer_acquisition/create_link",
                               json={"link_name": name, "range": {"user_list": list(users)},
                                     "skip_verify": skip_verify})

    async def update_acquisition_link(self, *, link_id: str, name: str, users: Sequence[str],
                                      skip_verify: bool | None = None) -> dict[str, Any]:
        """The members (and name) of a 获客助手 link change; its url stays. The API and its
        `link_id` are known (customer_acquisition/update_link, as the public SDKs and WeCom's
        doc name it); the rest of the body is ASSUMED to be create_link's fields (link_name,
        range), a given range replacing the link's members: not confirmed by a WeCom sample
        (tests/data/acquisition/update_link.json). skip_verify is create_link's field too:
        that update_link takes it, and whether it would take it alone, is NOT confirmed, so
        it rides with the name and range each time it is given [unconfirmed]."""
        body: dict[str, Any] = {"link_id": link_id, "link_name": name,
                                "range": {"user_list": list(users)}}
        if skip_verify is not None:
            body["skip_verify"] = skip_verify
        return await self.call("POST", "externalcontact/customer_acquisition/update_link",
                               json=body)

    async def acquisition_quota(self) -> dict[str, Any]:
        """The corp's 获客助手 paid quota (GET externalcontact/customer_acquisition_quota):
        `total`, `balance` and `quota_list[]{expire_date (unix), balance}`, as the public
        SDKs read it."""
        return await self.call("GET", "externalcontact/customer_acquisition_quota")

    async def acquisition_statistic(self, *, link_id: str, start_time: int,
                                    end_time: int) -> dict[str, Any]:
        """One link's figures between two unix times (customer_acquisition/statistic):
        `click_link_customer_cnt` and `new_customer_cnt`. The longest range WeCom answers is
        not in our facts: a refusal raises like any other."""
        return await self.call("POST", "externalcontact/customer_acquisition/statistic",
                               json={"link_id": link_id, "start_time": start_time,
                                     "end_time": end_time})

    async def send_app_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """message/send; partial failures come back in invaliduser etc., not as errors."""
        return await self.call("POST", "message/send",
                               json={"agentid": self.tenant.agent_id, **body})

    async def upload_media(self, media_type: str, filename: str, content: bytes) -> dict[str, Any]:
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        files = {"media": (filename, content, kind)}
        request = _Request("POST", "media/upload", {"type": media_type}, files=files)
        return await self._call(request)

    async def get_media(self, media_id: str) -> dict[str, Any]:
        """media/get: a temporary media file (an upload, or a picture a member sent the app,
        while its 3-day media id lives) as {"content": bytes, "content_type": str}."""
        return await self._call(_Request("GET", "media/get", {"media_id": media_id},
                                         download=True))

    async def get_agent_jsapi_ticket(self) -> dict[str, Any]:
        """The app's jsapi ticket for agentConfig / ww.register (FACTS-next §B.2): fetched
        with this app's own token; `ticket` and `expires_in` (7200 s)."""
        return await self.call("GET", "ticket/get", params={"type": "agent_config"})

    async def oauth_user_info(self, code: str) -> dict[str, Any]:
        """OAuth2 code → the visitor (FACTS-next §B.7): a member gets `userid`, anyone else
        `openid`. The code is single use and lives 5 minutes."""
        return await self.call("GET", "auth/getuserinfo", params={"code": code})
    # -- address book (FACTS-next §I) -------------------------------------------------------

    async def get_user(self, userid: str) -> dict[str, Any]:
        """user/get: name, department, main_department, status (1 active, 2 disabled,
        4 not activated, 5 left)."""
        return await self.call("GET", "user/get", params={"userid": userid})

    async def list_users(self, department_id: int, *, fetch_child: bool = False
                         ) -> dict[str, Any]:
        """user/simplelist: `userlist` of {userid, name, department}."""
        return await self.call("GET", "user/simplelist", params={
            "department_id": department_id, "fetch_child": int(fetch_child)})

    async def list_user_ids(self, *, cursor: str = "", limit: int = 10000) -> dict[str, Any]:
        """user/list_id: one page of `dept_user` [{userid, department}] and `next_cursor`.
        FACTS names only the cursor and limit ≤ 10000; POST and the answer's field names
        are [mem]."""
        body: dict[str, Any] = {"limit": limit}
        if cursor:
            body["cursor"] = cursor
        return await self.call("POST", "user/list_id", json=body)

    async def list_departments(self, department_id: int | None = None) -> dict[str, Any]:
        """department/simplelist: `department_id` [{id, parentid, order}] (ids only); all
        visible departments without an id ([mem])."""
        params = {} if department_id is None else {"id": department_id}
        return await self.call("GET", "department/simplelist", params=params)

    async def get_department(self, department_id: int) -> dict[str, Any]:
        """department/get: `department` {id, name, parentid, order, …}; whether `name` is
        returned to every self-built app is unconfirmed (FACTS-next §I)."""
        return await self.call("GET", "department/get", params={"id": department_id})

    # -- machinery ------------------------------------------------------------------------

    async def unionid_to_external_userid(self, *, unionid: str, openid: str) -> str | None:
        """Self-built-app conversion (doc 93274 [mem]): the customer's external_userid or None."""
        body = {"unionid": unionid, "openid": openid}
        result = await self.call("POST", "externalcontact/unionid_to_external_userid", json=body)
        return result.get("external_userid") or None

    async def _call(self, request: _Request) -> dict[str, Any]:
        if request.path.startswith(("/", "http://", "https://")):
            raise ValueError("path must be relative to api_base, like 'externalcontact/get'")
        token: str | None = None
        refreshed, tries = False, 1
        while True:
            try:
                token = token or await self._tokens.current()
                return await self._answered(request, token)
            except WeComTokenError as exc:
                if refreshed or token is None:
                    raise
                refreshed = True
                self._log_token_rejected(exc)
                await self._tokens.discard(token)
                token = None
            except WeComRateLimited as exc:
                if tries >= self._backoff.attempts:
                    raise
                await self._back_off(exc, tries)
                tries += 1

    async def _answered(self, request: _Request, token: str) -> dict[str, Any]:
        """`_send`, then a turn for the handling task (guidebot/lanes.py): under a burst
        WeCom's answers, and its errors, arrive by the hundred in one turn of the loop."""
        try:
            result = await self._send(request, token)
        except WeComError:
            await lanes.turn()
            raise
        await lanes.turn()
        return result

    async def _send(self, request: _Request, token: str) -> dict[str, Any]:
        await self._limiter.acquire()
        if request.download:
            return await self._http.download(request.path,
                                             params={**request.params, "access_token": token})
        return await self._http.call(request.method, request.path,
                                     params={**request.params, "access_token": token},
                                     body=request.body, files=request.files)

    async def _fetch_token(self) -> tuple[str, datetime]:
        started = datetime.now(UTC)
        await self._limiter.acquire()
        result = await self._http.call("GET", "gettoken", params={
            "corpid": self.tenant.corp_id, "corpsecret": self.tenant.secret})
        try:
            token = str(result["access_token"])
            expires_in = int(result.get("expires_in", 7200))
        except (KeyError, TypeError, ValueError):
            raise WeComTransportError(None, "malformed gettoken answer", path="gettoken") from None
        return token, started + timedelta(seconds=expires_in)

    async def _back_off(self, exc: WeComError, tries: int) -> None:
        delay = self._backoff.delay(tries)
        logger.warning(
            "wecom call retry tenant=%s path=%s errcode=%s try=%d/%d wait=%.2fs",
            self.tenant.id, exc.path, exc.errcode, tries, self._backoff.attempts, delay,
        )
        await asyncio.sleep(delay)

    def _log_token_rejected(self, exc: WeComError) -> None:
        # Routine (WeCom may invalidate tokens early); a second rejection raises WeComTokenError.
        logger.info(
            "wecom access token rejected tenant=%s path=%s errcode=%s; refreshing once",
            self.tenant.id, exc.path, exc.errcode,
        )
