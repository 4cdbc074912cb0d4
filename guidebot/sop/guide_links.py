"""Signed links to a guide's task page, the url of the task cards guidebot sends a guide.

The page needs no login (WeCom opens it from the app message): a link is the tenant, the task
id and an HMAC of both under a key derived from the tenant's admin token, 128 bits. It names
one task, so a forwarded link shows that task and nothing else; rotating the admin token
invalidates every earlier link.
"""

from __future__ import annotations

import hashlib
import hmac

from guidebot.settings import TenantSettings

SIGNATURE_HEX = 32  # 128 bits


def _key(tenant: TenantSettings) -> bytes:
    return hmac.new(tenant.admin_token.encode(), b"guidebot guide task links",
                    hashlib.sha256).digest()


def signature(tenant: TenantSettings, task_id: int) -> str:
    message = f"{tenant.id}:{task_id}".encode()
    return hmac.new(_key(tenant), message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX]


def valid(tenant: TenantSettings, task_id: int, given: str) -> bool:
    return hmac.compare_digest(signature(tenant, task_id).encode(), given.encode())


def task_url(public_url: str, tenant: TenantSettings, task_id: int) -> str:
    sig = signature(tenant, task_id)
    return f"{public_url.rstrip('/')}/g/{tenant.id}/tasks/{task_id}?sig={sig}"
