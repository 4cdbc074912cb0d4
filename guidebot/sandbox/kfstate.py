"""微信客服 (kf) in the sandbox: accounts, servicers, sessions, the message log and event codes.

Facts (WeCom docs as copied into SDKs): a session is one customer ↔ one kf account; its state
is 0 未处理, 1 智能助手, 2 待接入池, 3 人工接待, 4 已结束/未开始; a customer message resets 4 to 0
and restarts the 48 h window and the 5-message count; `kf/send_msg` works only in 0/1.
Where the docs are silent the sandbox decides, and says so next to the decision.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from guidebot.sandbox import errors, ids
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

WINDOW_S = 48 * 3600  # send_msg only within 48 h after the customer's last message
SEND_LIMIT = 5  # at most 5 messages per customer message
TOKEN_TTL_S = 600  # the callback Token is valid 10 minutes
COLD_START_S = 3 * 86400  # sync_msg without a cursor: roughly the last 3 days [secondary]
POOL_CODE_TTL_S = 48 * 3600  # msg_code for →2 / →3 ("48 h"); for →4 20 s

UNTOUCHED, ASSISTANT, POOL, HUMAN, ENDED = 0, 1, 2, 3, 4
# The doc's table (FACTS-next §A.6): 0 → 2/3 ("reply by API, move to 2 or 3"), 1 → 2/3,
# 2 → 3, 3 → 3 (transfer) or 4, 4 → nothing. The doc's prose also allows 0 → 1 ("optionally
# trans → 1" to let an AI answer). A looser third-party matrix (0/1 → 4, 2 → 2/4) is
# unconfirmed, so the sandbox refuses those with 95016 (stricter than WeCom at worst).
TRANSITIONS: dict[int, frozenset[int]] = {
    UNTOUCHED: frozenset({ASSISTANT, POOL, HUMAN}),
    ASSISTANT: frozenset({POOL, HUMAN}),
    POOL: frozenset({HUMAN}),
    HUMAN: frozenset({HUMAN, ENDED}),
    ENDED: frozenset(),
}
SERVING, STOPPED = 0, 1  # servicer/list status: 0 接待中, 1 停止接待
REMOVED = -1  # the sandbox's mark for "not a servicer of this account" (control route)


@dataclass
class KfSession:
    open_kfid: str
    external_userid: str
    state: int = ENDED
    servicer: str = ""
    last_customer_at: float | None = None
    last_sent_at: float | None = None
    sent: int = 0  # messages sent through the API since the customer's last message
    coded: set[int] = field(default_factory=set)  # states whose first entry gave a msg_code


@dataclass
class EventCode:
    """A welcome_code or msg_code for kf/send_msg_on_event: single use, valid `ttl_s`."""

    code: str
    open_kfid: str
    external_userid: str
    issued_at: float
    ttl_s: float
    state: int | None  # the session state the code belongs to (None: the welcome code)
    used: bool = False


@dataclass
class KfState:
    accounts: dict[str, str] = field(default_factory=dict)  # open_kfid → name
    servicers: dict[tuple[str, str], int] = field(default_factory=dict)  # (kfid, userid) → status
    sessions: dict[tuple[str, str], KfSession] = field(default_factory=dict)
    log: list[JSON] = field(default_factory=list)  # sync_msg items; the cursor is a position
    tokens: dict[str, float] = field(default_factory=dict)  # callback Token → issued at
    codes: dict[str, EventCode] = field(default_factory=dict)
    sent: list[JSON] = field(default_factory=list)  # what send_msg / send_msg_on_event sent
    sent_msgids: set[str] = field(default_factory=set)
    customers: dict[str, JSON] = field(default_factory=dict)  # kf external_userid → profile
    contact_ways: dict[str, JSON] = field(default_factory=dict)  # url → {open_kfid, scene}

    def ensure_account(self, open_kfid: str) -> None:
        self.accounts.setdefault(open_kfid, f"客服{len(self.accounts) + 1}")

    def account(self, open_kfid: str, configured: tuple[str, ...]) -> str:
        """A known account (configured for the tenant, or created by a simulation)."""
        if open_kfid in configured:
            self.ensure_account(open_kfid)
        if open_kfid not in self.accounts:
            # WeCom's code for an unknown open_kfid is not in FACTS: the sandbox's catch-all.
            raise ApiError(errors.INVALID_PARAM, f"invalid open_kfid {open_kfid!r}")
        return open_kfid

    def session(self, open_kfid: str, external_userid: str) -> KfSession:
        key = (open_kfid, external_userid)
        if key not in self.sessions:
            self.sessions[key] = KfSession(open_kfid, external_userid)
        return self.sessions[key]

    def issue_token(self, now: float) -> str:
        token = "ENC" + ids.random_text(45)
        self.tokens[token] = now
        return token

    def check_token(self, token: str, now: float) -> None:
        issued = self.tokens.get(token)
        if issued is None or now > issued + TOKEN_TTL_S:
            # WeCom's errcode for an unknown or expired sync_msg token is not in FACTS.
            raise ApiError(errors.KF_INVALID_TOKEN, "invalid or expired token")

    def _append(self, item: JSON) -> None:
        self.log.append(item)

    def customer(self, external_userid: str, *, unionid: str = "", nickname: str = "") -> JSON:
        profile = self.customers.setdefault(external_userid, {
            "external_userid": external_userid, "nickname": nickname or ids.demo_name(),
            "avatar": "", "gender": 0, "unionid": unionid or ids.unionid()})
        if unionid:
            profile["unionid"] = unionid
        return profile

    def customer_writes(self, open_kfid: str, external_userid: str, text: str,
                        now: float) -> JSON:
        """A WeChat customer sends a text: 4 → 0, the window and the count start again."""
        session = self.session(open_kfid, external_userid)
        if session.state == ENDED:
            session.state, session.servicer, session.coded = UNTOUCHED, "", set()
        session.last_customer_at, session.sent = now, 0
        item = {"msgid": "from_msgid_" + ids.random_text(19, "0123456789"),
                "open_kfid": open_kfid, "external_userid": external_userid,
                "send_time": int(now), "origin": 3, "msgtype": "text",
                "text": {"content": text}}
        self._append(item)
        return item

    def servicer_writes(self, open_kfid: str, external_userid: str, servicer: str, text: str,
                        now: float) -> JSON:
        """A servicer answers from the WeCom client (sync_msg origin 5 with servicer_userid).
        Only the session's servicer while it is in state 3 (人工接待): the sandbox's rule, the
        client offers no reply box otherwise (assumed, not documented)."""
        session = self.session(open_kfid, external_userid)
        if session.state != HUMAN or session.servicer != servicer:
            raise ApiError(errors.KF_STATE_FORBIDS_SEND,
                           "the session is not with this servicer (state 3)")
        item = {"msgid": "servicer_msgid_" + ids.random_text(19, "0123456789"),
                "open_kfid": open_kfid, "external_userid": external_userid,
                "send_time": int(now), "origin": 5, "servicer_userid": servicer,
                "msgtype": "text", "text": {"content": text}}
        self._append(item)
        return item

    def session_changes(self, open_kfid: str, external_userid: str, change_type: int,
                        new_servicer: str, now: float) -> JSON:
        """A servicer takes the session from the pool (change_type 1: state 2 to 3 with them),
        ends it (3: state 4) or transfers it to another servicer (2: state 3 with the new
        one) in the WeCom client; sync_msg gets the system event session_status_change
        (origin 4) with old_servicer_userid, new_servicer_userid and a msg_code (the fields as
        WeCom's sync_msg doc lists them)."""
        session = self.session(open_kfid, external_userid)
        if session.state != (POOL if change_type == 1 else HUMAN):
            raise ApiError(errors.KF_BAD_TRANSITION, "the session is not in state "
                           f"{2 if change_type == 1 else 3}")
        old = session.servicer
        if change_type == 1:
            if not new_servicer:
                raise ApiError(errors.INVALID_PARAM, "a take needs the servicer")
            code = self.transition(session, HUMAN, new_servicer, now)
        elif change_type == 2:
            if not new_servicer or new_servicer == old:
                raise ApiError(errors.INVALID_PARAM, "a transfer needs another servicer")
            code = self.transition(session, HUMAN, new_servicer, now)
        elif change_type == 3:
            code, new_servicer = self.transition(session, ENDED, "", now), ""
        else:
            raise ApiError(errors.INVALID_PARAM, "change_type must be 1, 2 or 3")
        event: JSON = {"event_type": "session_status_change", "open_kfid": open_kfid,
                       "external_userid": external_userid, "change_type": change_type,
                       "old_servicer_userid": old, "new_servicer_userid": new_servicer,
                       "msg_code": code}
        item = {"msgid": "event_msgid_" + ids.random_text(19, "0123456789"),
                "open_kfid": open_kfid, "external_userid": external_userid,
                "send_time": int(now), "origin": 4, "msgtype": "event", "event": event}
        self._append(item)
        return item

    def queue(self, open_kfid: str, external_userid: str, now: float) -> None:
        """WeCom's routing puts the session in the pool (0/1 → 2; the customer wrote)."""
        session = self.session(open_kfid, external_userid)
        if session.last_customer_at is None:
            raise ApiError(errors.KF_BAD_TRANSITION, "the customer never wrote")
        self.transition(session, POOL, "", now)

    def unknown_change(self, open_kfid: str, external_userid: str, change_type: int,
                       new_servicer: str, now: float) -> JSON:
        """A session_status_change whose change_type the facts do not have (4…), as it
        might come: the session is left as it is."""
        session = self.session(open_kfid, external_userid)
        event: JSON = {"event_type": "session_status_change", "open_kfid": open_kfid,
                       "external_userid": external_userid, "change_type": change_type,
                       "old_servicer_userid": session.servicer,
                       "new_servicer_userid": new_servicer, "msg_code": ""}
        item = {"msgid": "event_msgid_" + ids.random_text(19, "0123456789"),
                "open_kfid": open_kfid, "external_userid": external_userid,
                "send_time": int(now), "origin": 4, "msgtype": "event", "event": event}
        self._append(item)
        return item

    def customer_enters(self, open_kfid: str, external_userid: str, scene: str,
                        scene_param: str, now: float, window_s: float) -> JSON:
        """enter_session. A welcome_code only when nothing was exchanged in the last 48 h
        (FACTS-next §A.3; the admin-configured native welcome is not simulated)."""
        session = self.session(open_kfid, external_userid)
        recent = [t for t in (session.last_customer_at, session.last_sent_at) if t is not None]
        event: JSON = {"event_type": "enter_session", "open_kfid": open_kfid,
                       "external_userid": external_userid, "scene": scene,
                       "scene_param": scene_param}
        if not recent or now - max(recent) > WINDOW_S:
            code = ids.welcome_code()
            self.codes[code] = EventCode(code, open_kfid, external_userid, now, window_s, None)
            event["welcome_code"] = code
        item = {"msgid": "event_msgid_" + ids.random_text(19, "0123456789"),
                "open_kfid": open_kfid, "external_userid": external_userid,
                "send_time": int(now), "origin": 4, "msgtype": "event", "event": event}
        self._append(item)
        return item

    def sync(self, start: int | None, limit: int, open_kfid: str,
             now: float) -> tuple[list[JSON], int, bool]:
        """Items from position `start` (None: the last 3 days), at most `limit` of them for
        `open_kfid` (all accounts when empty); the next position and whether more remain."""
        position = start
        if position is None:
            position = next((i for i, item in enumerate(self.log)
                             if item["send_time"] >= now - COLD_START_S), len(self.log))
        found: list[JSON] = []
        while position < len(self.log) and len(found) < limit:
            item = self.log[position]
            position += 1
            if not open_kfid or item["open_kfid"] == open_kfid:
                found.append(item)
        more = any(not open_kfid or item["open_kfid"] == open_kfid
                   for item in self.log[position:])
        return found, position, more

    def check_send(self, session: KfSession, now: float) -> None:
        """FACTS-next §A.4 rules, in the order the checklist gives them."""
        if session.state not in (UNTOUCHED, ASSISTANT):
            raise ApiError(errors.KF_STATE_FORBIDS_SEND)
        if session.last_customer_at is None or now - session.last_customer_at > WINDOW_S:
            raise ApiError(errors.KF_SEND_TIME_LIMIT)
        if session.sent >= SEND_LIMIT:
            raise ApiError(errors.KF_SEND_COUNT_LIMIT)

    def record_sent(self, session: KfSession | None, msgid: str, message: JSON,
                    now: float) -> None:
        if session is not None:
            session.last_sent_at = now
        self.sent_msgids.add(msgid)
        self.sent.append({**message, "msgid": msgid, "at": now})

    def new_msgid(self, given: str) -> str:
        if given and given in self.sent_msgids:
            # Not in FACTS: what WeCom does with a reused msgid. The sandbox refuses it, so a
            # client that sends twice under one id is seen.
            raise ApiError(errors.INVALID_PARAM, f"msgid {given} was already used")
        return given or "gb" + ids.random_text(30)

    def transition(self, session: KfSession, target: int, servicer: str,
                   now: float) -> str:
        """service_state/trans; the msg_code of a first →2 / →3 and of →4, else ""."""
        if target not in TRANSITIONS or target not in TRANSITIONS[session.state]:
            raise ApiError(errors.KF_BAD_TRANSITION)
        if target == HUMAN:
            if not servicer:
                raise ApiError(errors.INVALID_PARAM, "servicer_userid is required for state 3")
            status = self.servicers.get((session.open_kfid, servicer), SERVING)
            if status == REMOVED:
                raise ApiError(errors.KF_NOT_SERVICER)
            if status == STOPPED:
                raise ApiError(errors.KF_SERVICER_STOPPED)
        code = ""
        if target == ENDED or (target in (POOL, HUMAN) and target not in session.coded):
            session.coded.add(target)
            code = secrets.token_urlsafe(24)
            ttl = 20.0 if target == ENDED else POOL_CODE_TTL_S
            self.codes[code] = EventCode(code, session.open_kfid, session.external_userid,
                                         now, ttl, target)
        session.state = target
        session.servicer = servicer if target == HUMAN else ("" if target != ENDED
                                                             else session.servicer)
        return code

    def use_code(self, code: str, now: float) -> EventCode:
        found = self.codes.get(code)
        late = found is not None and now > found.issued_at + found.ttl_s
        stale = (found is not None and found.state is not None
                 and self.session(found.open_kfid, found.external_userid).state != found.state)
        if found is None or found.used or late or stale:
            # FACTS-next §A.5: single use, within its validity, and (but for the welcome) only
            # while the session is in the state that produced it; the errcode is not in FACTS.
            raise ApiError(errors.KF_CODE_INVALID, "code unknown, used, expired or stale")
        found.used = True
        return found

    def snapshot(self) -> JSON:
        def session_json(s: KfSession) -> dict[str, Any]:
            return {"open_kfid": s.open_kfid, "external_userid": s.external_userid,
                    "service_state": s.state, "servicer_userid": s.servicer,
                    "sent_since_customer": s.sent}

        return {"accounts": dict(self.accounts),
                "sessions": [session_json(s) for s in self.sessions.values()],
                "sent": list(self.sent), "log": list(self.log),
                "contact_ways": dict(self.contact_ways)}
