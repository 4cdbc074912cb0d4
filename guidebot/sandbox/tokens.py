"""Access tokens per tenant app: gettoken, validation, expiry and early revocation."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from guidebot.sandbox import errors, ids
from guidebot.sandbox.errors import ApiError
from guidebot.settings import TenantSettings

TOKEN_TTL_S = 7200


@dataclass
class IssuedToken:
    token: str
    tenant: str
    expires_at: float
    revoked: bool = False


class TokenBook:
    """One live token per (corp_id, secret) app; old tokens stay known so they answer 42001."""

    def __init__(self, tenants: Mapping[str, TenantSettings]) -> None:
        self._tenants = tenants
        self._issued: dict[str, IssuedToken] = {}
        self._current: dict[str, IssuedToken] = {}

    def tenant_for(self, corpid: str | None, secret: str | None) -> str | None:
        """The tenant whose app these credentials name, if any."""
        for tenant in self._tenants.values():
            same_secret = hmac.compare_digest(tenant.secret.encode(), (secret or "").encode())
            if tenant.corp_id == corpid and same_secret:
                return tenant.id
        return None

    def gettoken(self, corpid: str | None, secret: str | None, now: float) -> dict[str, object]:
        if not any(t.corp_id == corpid for t in self._tenants.values()):
            raise ApiError(errors.INVALID_CORPID)
        tenant = self.tenant_for(corpid, secret)
        if tenant is None:
            raise ApiError(errors.INVALID_SECRET)
        current = self._current.get(tenant)
        if current is None or current.revoked or current.expires_at <= now:
            current = IssuedToken(ids.access_token(), tenant, now + TOKEN_TTL_S)
            self._issued[current.token] = self._current[tenant] = current
        # FACTS §3.1: the same token is returned while valid. The sandbox answers the seconds
        # it has left (WeCom's exact expires_in on a repeat fetch is not in FACTS).
        expires_in = int(current.expires_at - now)
        return {"errcode": 0, "errmsg": "ok", "access_token": current.token,
                "expires_in": expires_in}

    def owner(self, token: str | None) -> str | None:
        """The tenant a token was issued to, valid or not (for logging and fault matching)."""
        issued = self._issued.get(token or "")
        return issued.tenant if issued else None

    def check(self, token: str | None, now: float) -> str:
        """The tenant of a valid token, or 41001 / 40014 / 42001."""
        if not token:
            raise ApiError(errors.MISSING_TOKEN)
        issued = self._issued.get(token)
        if issued is None:
            raise ApiError(errors.INVALID_TOKEN)
        if issued.revoked or issued.expires_at <= now:
            raise ApiError(errors.TOKEN_EXPIRED)
        return issued.tenant

    def revoke(self, tenant: str) -> bool:
        """Invalidate the tenant's live token early, as WeCom may; True if there was one."""
        current = self._current.pop(tenant, None)
        if current is None:
            return False
        current.revoked = True
        return True
