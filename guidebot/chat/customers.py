"""Who wrote to 微信客服: the contact behind a kf customer and what guidebot knows about them.

The kf `external_userid` is matched to a 客户联系 customer by the same id, else by unionid from
`kf/customer/batchget`. Whether WeCom gives the same person the same external_userid in both
is unconfirmed (FACTS-next §A.8), hence both; the unionid is there only when the corp bound a
WeChat developer account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.chat.decision import CustomerContext
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import kf as repo
from guidebot.db.repo import opt_outs as opt_outs_repo
from guidebot.db.repo import tags as tags_repo
from guidebot.db.types import utcnow
from guidebot.errors import WeComError
from guidebot.wecom.kf import KfApi

log = logging.getLogger(__name__)
BATCHGET_IDS = 100  # kf/customer/batchget takes up to 100 external_userids


@dataclass(frozen=True)
class Writer:
    """The kf customer, their unionid (if WeCom gave one) and the matched contact's context
    (`contact` False: not a contact; the context then only carries the kf id)."""

    kf_userid: str
    unionid: str | None
    contact: bool
    context: CustomerContext


class Customers:
    def __init__(self, db: Database, api_for: Callable[[str], KfApi]) -> None:
        self._db = db
        self._api_for = api_for

    async def unionids(self, tenant: str, kf_userids: Sequence[str]) -> dict[str, str]:
        """kf customer → unionid, for those WeCom gives one (kf/customer/batchget, 100 ids a
        call); a failed call leaves its customers without."""
        found: dict[str, str] = {}
        for start in range(0, len(kf_userids), BATCHGET_IDS):
            asked = kf_userids[start:start + BATCHGET_IDS]
            try:
                answer = await self._api_for(tenant).customers(asked)
            except WeComError as exc:
                log.warning("kf customer lookup failed tenant=%s errcode=%s", tenant,
                            exc.errcode)
                continue
            for customer in answer:
                userid = customer.get("external_userid")
                if userid in asked and customer.get("unionid"):
                    found.setdefault(str(userid), str(customer["unionid"]))
        return found

    async def writer(self, tenant: str, kf_userid: str) -> Writer:
        return (await self.writers(tenant, [kf_userid]))[kf_userid]

    async def writers(self, tenant: str, kf_userids: Sequence[str]) -> dict[str, Writer]:
        """Each kf customer as a Writer: one read for those who are contacts by the same id,
        one batchget for the unionids of the others and one read to match those."""
        ids = list(dict.fromkeys(kf_userids))
        async with self._db.read() as s:
            known = await repo.customers(s, tenant=tenant, external_userids=ids)
            stored = await repo.kf_unionids(s, tenant=tenant,
                                            kf_userids=[u for u in ids if u not in known])
        unionids = {u: c.unionid for u, c in known.items()}
        contact_of = {u: u for u in known}
        fetched = await self.unionids(
            tenant, [u for u in ids if u not in known and u not in stored])
        if fetched:  # kept, for the console's conversation view and the next message
            async with self._db.write() as s:
                await repo.remember_unionids(s, tenant=tenant, unionids=fetched, at=utcnow())
        asked = {**stored, **fetched}
        if asked:
            async with self._db.read() as s:
                by_unionid = await repo.customers_by_unionid(s, tenant=tenant,
                                                             unionids=list(asked.values()))
            for userid, unionid in asked.items():
                unionids[userid] = unionid
                if unionid in by_unionid:
                    contact_of[userid] = by_unionid[unionid]
        contexts = await self.contexts(tenant, list(dict.fromkeys(contact_of.values())))
        writers = {u: Writer(u, unionids.get(u), True, contexts[contact_of[u]])
                   if u in contact_of else
                   Writer(u, unionids.get(u), False, CustomerContext(external_userid=u))
                   for u in ids}
        async with self._db.read() as s:  # an opt-out is kept under the context's id
            opted_out = await opt_outs_repo.opted_out_among(
                s, tenant=tenant,
                external_userids=sorted({w.context.external_userid for w in writers.values()}))
        return {u: replace(w, context=replace(w.context, opted_out=True))
                if w.context.external_userid in opted_out else w for u, w in writers.items()}

    async def contexts(self, tenant: str, external_userids: Sequence[str]
                       ) -> dict[str, CustomerContext]:
        if not external_userids:
            return {}
        async with self._db.read() as s:
            return {u: await self._context(s, tenant, u) for u in external_userids}

    async def _context(self, s: AsyncSession, tenant: str,
                       external_userid: str) -> CustomerContext:
        customer = await contacts_repo.get_customer(s, tenant=tenant,
                                                    external_userid=external_userid)
        guide = await repo.current_guide(s, tenant=tenant, external_userid=external_userid)
        tags = await tags_repo.customer_tag_names(s, tenant=tenant,
                                                  external_userid=external_userid)
        skus = await repo.recent_skus(s, tenant=tenant, external_userid=external_userid)
        return CustomerContext(
            external_userid=external_userid, name=customer.name if customer else "",
            exclusive_guide=guide.userid if guide else None,
            store_id=guide.store_id if guide else None, tags=tuple(tags),
            recent_skus=tuple(skus))
