"""JS-SDK tickets and OAuth2 codes of one tenant's app (FACTS-next §B.2, §B.7, §B.8)."""

from __future__ import annotations

import hashlib
import hmac
import string
from collections import deque
from dataclasses import dataclass, field

from guidebot.sandbox import errors, ids
from guidebot.sandbox.errors import ApiError

TICKET_TTL_S = 7200
TICKETS_PER_HOUR_PER_APP = 100  # FACTS-next §B.2; the corp-wide 400/hour is not emulated
CODE_TTL_S = 300  # "single use, expires after 5 min"
HOUR_S = 3600.0
# FACTS-next §G: WeCom's errcode for an invalid or reused OAuth code is not confirmed;
# the sandbox answers 40029 ("invalid code"), the code the checklist suggests.
INVALID_CODE = 40029
INVALID_TICKET_TYPE = 91040  # 获取ticket的类型无效
BAD_SIGNATURE = 40093  # jsapi签名错误
TICKET_ALPHABET = string.ascii_letters + string.digits + "-_"  # as in FACTS' example ticket


@dataclass
class Ticket:
    ticket: str
    expires_at: float


@dataclass
class OAuthCode:
    userid: str
    expires_at: float


@dataclass
class JsapiState:
    tickets: list[Ticket] = field(default_factory=list)
    fetches: deque[float] = field(default_factory=deque)  # times of ticket/get this hour
    codes: dict[str, OAuthCode] = field(default_factory=dict)

    def agent_ticket(self, kind: str, now: float) -> Ticket:
        """A new agent_config ticket; earlier ones stay valid until they expire. Whether
        WeCom returns the same ticket while it is valid is not in FACTS-next."""
        if kind != "agent_config":
            raise ApiError(INVALID_TICKET_TYPE, f"invalid ticket type {kind!r}")
        while self.fetches and self.fetches[0] <= now - HOUR_S:
            self.fetches.popleft()
        if len(self.fetches) >= TICKETS_PER_HOUR_PER_APP:
            raise ApiError(errors.RATE_LIMITED, "ticket fetches over 100/hour for this app")
        self.fetches.append(now)
        ticket = Ticket(ids.random_text(86, TICKET_ALPHABET), now + TICKET_TTL_S)
        self.tickets = [t for t in self.tickets if t.expires_at > now] + [ticket]
        return ticket

    def issue_code(self, userid: str, now: float) -> str:
        code = ids.random_text(64)
        self.codes[code] = OAuthCode(userid, now + CODE_TTL_S)
        return code

    def redeem(self, code: str, now: float) -> str:
        """The member a code was issued for; the code is gone afterwards (single use)."""
        found = self.codes.pop(code, None)
        if found is None or found.expires_at <= now:
            raise ApiError(INVALID_CODE, "invalid code")
        return found.userid

    def verify(self, *, url: str, timestamp: str, nonce: str, signature: str,
               now: float) -> bool:
        """What the WeCom client checks on agentConfig: the signature over the page URL
        without its fragment, with any live ticket of this app (else 40093)."""
        page = url.split("#", 1)[0]
        for t in self.tickets:
            if t.expires_at <= now:
                continue
            raw = f"jsapi_ticket={t.ticket}&noncestr={nonce}&timestamp={timestamp}&url={page}"
            expected = hashlib.sha1(raw.encode()).hexdigest()
            if hmac.compare_digest(expected, signature):
                return True
        return False
