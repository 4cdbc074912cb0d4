"""删除客户个人信息 (PIPL's right to deletion): HQ erases one customer.

Refused while the customer still follows a guide of the brand in WeCom: WeCom keeps the
contact, and guidebot's next sync or callback would store them again. Otherwise, in one
transaction, everything personal guidebot holds about them is deleted or blanked, and the
records the brand keeps for its accounts and figures (orders, refunds, commissions, the
statistics' events) are kept under a tombstone pseudonym (`erased-<hex>`), so no figure
changes and nothing leads back to the person (guidebot/db/repo/erasure.py names each table).
The erasure is recorded (customer_erasures) with the tombstone, never the old id or name."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.models_erasures import CustomerErasure
from guidebot.db.repo import erasure as repo
from guidebot.errors import NotFound, StateConflict

log = logging.getLogger(__name__)

BY = ("admin", "console", "cli")


def tombstone() -> str:
    return f"erased-{secrets.token_hex(8)}"


async def erase(db: Database, tenant: str, external_userid: str, *, by: str) -> dict[str, Any]:
    """{tombstone, erased_at, counts} (rows touched per table); NotFound for an unknown (or
    already erased) customer; StateConflict while they follow a guide, are still in a
    customer group, or a callback naming them waits to be handled."""
    assert by in BY
    async with db.write() as s:
        found = await repo.customer(s, tenant=tenant, external_userid=external_userid)
        if found is None:
            raise NotFound(f"external_userid: no customer {external_userid} in this tenant",
                           code="customer.unknown", external_userid=external_userid)
        guides = await repo.following_guides(s, tenant=tenant, external_userid=external_userid)
        if guides:
            raise StateConflict(
                f"external_userid: the customer still follows {', '.join(guides)} in WeCom; "
                "the relation must end first (the customer deletes the guide, or the guide the "
                "customer), or guidebot would store them again", code="customer.still_following",
                guides="、".join(guides))
        groups = await repo.live_groups(s, tenant=tenant, external_userid=external_userid)
        if groups:
            raise StateConflict(
                f"external_userid: the customer is still in the customer group(s) "
                f"{', '.join(groups[:5])}{' …' if len(groups) > 5 else ''} in WeCom; they must "
                "leave (or be removed) first, or the next group sync would store them again",
                code="customer.still_in_groups",
                groups="、".join(groups[:5]) + ("……" if len(groups) > 5 else ""))
        if await repo.pending_callbacks(s, tenant=tenant, external_userid=external_userid):
            raise StateConflict("external_userid: a callback naming the customer is not "
                                "handled yet; try again in a moment",
                                code="customer.callbacks_pending")
        unionids, openids = await repo.linked_ids(s, tenant=tenant,
                                                  external_userid=external_userid,
                                                  unionid=found.unionid)
        pseudonym = tombstone()
        counts = await repo.erase(s, tenant=tenant, external_userid=external_userid,
                                  tombstone=pseudonym, name=found.name, unionids=unionids,
                                  openids=openids)
        record = CustomerErasure(tenant=tenant, tombstone=pseudonym, by=by,
                                 counts=json.dumps(counts, sort_keys=True))
        s.add(record)
        await s.flush()
        erased_at = record.erased_at
    log.info("customer erased tenant=%s tombstone=%s by=%s", tenant, pseudonym, by)
    return {"tombstone": pseudonym, "erased_at": erased_at.isoformat(),
            "counts": dict(sorted(counts.items()))}
