"""Who wrote to 微信客服: the contact behind a kf customer and what guidebot knows about them.

The kf `external_userid` is matched to a 客户联系 customer by the same id, else by unionid from
`kf/customer/batchget`. Whether WeCom gives the same person the same external_userid in both
is unconfirmed (FACTS-next §A.8), hence both; the unionid is there only when the corp bound a
WeChat developer account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from guidebot.chat.decision import CustomerContext
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import kf as repo
from guidebot.db.repo import tags as tags_repo
from guidebot.errors import WeComError
from guidebot.wecom.kf import KfApi

log = logging.getLogger(__name__)


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

    async def unionid(self, tenant: str, kf_userid: str) -> str | None:
        try:
            found = await self._api_for(tenant).customers([kf_userid])
        except WeComError as exc:
            log.warning("kf customer lookup failed tenant=%s errcode=%s", tenant, exc.errcode)
            return None
        for customer in found:
            if customer.get("external_userid") == kf_userid and customer.get("unionid"):
                return str(customer["unionid"])
        return None

    async def writer(self, tenant: str, kf_userid: str) -> Writer:
        async with self._db.read() as s:
            known = await contacts_repo.get_customer(s, tenant=tenant, external_userid=kf_userid)
        unionid = known.unionid if known is not None else None
        contact_id = kf_userid if known is not None else None
        if contact_id is None:
            unionid = await self.unionid(tenant, kf_userid)
            if unionid:
                async with self._db.read() as s:
                    contact_id = await repo.customer_by_unionid(s, tenant=tenant,
                                                                unionid=unionid)
        if contact_id is None:
            return Writer(kf_userid, unionid, False, CustomerContext(external_userid=kf_userid))
        return Writer(kf_userid, unionid, True, await self.context(tenant, contact_id))

    async def context(self, tenant: str, external_userid: str) -> CustomerContext:
        async with self._db.read() as s:
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
