"""A catalog product as a kf `miniprogram` message (Decision.card_sku).

kf/send_msg's miniprogram needs `appid`, `title` (≤ 64 bytes), `pagepath` and a
`thumb_media_id` (FACTS-next §A.4). The catalog has no pictures, so the thumbnail comes from
content_library/messages/kf_card.toml: its miniprogram attachment's `pic_file` (uploaded with
media/upload like every library picture) or `pic_media_id`, and its `appid` when the tenant
sets no `miniprogram_appid`. The page is the product's, tracked for the customer's exclusive
guide (campaign "kf") when there is one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from guidebot.content.catalog import Catalog
from guidebot.content.library import Library
from guidebot.errors import ValidationFailed, WeComError
from guidebot.settings import Settings

log = logging.getLogger(__name__)

MESSAGE = "kf_card"
CAMPAIGN = "kf"
TITLE_BYTES = 64

Tracker = Callable[[str, str, list[dict[str, Any]], str], Awaitable[list[dict[str, Any]]]]
Pictures = Callable[[str, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class Card:
    message: dict[str, Any] | None  # the kf/send_msg body part, or None
    reason: str  # why there is none


class KfCards:
    def __init__(self, settings: Settings, library: Library, catalog: Catalog,
                 tracker: Tracker, pictures: Pictures) -> None:
        self._settings = settings
        self._library = library
        self._catalog = catalog
        self._tracker = tracker
        self._pictures = pictures

    async def card(self, tenant: str, sku: str, guide: str | None) -> Card:
        product = self._catalog.get(sku)
        if product is None:
            return Card(None, f"card {sku}: not in the catalog")
        template = self._library.messages.get(MESSAGE)
        base = next((a for a in (template.attachments if template else ())
                     if a["type"] == "miniprogram"
                     and (a.get("pic_file") or a.get("pic_media_id"))), None)
        if base is None:
            return Card(None, f"card not sent: no picture in messages/{MESSAGE}.toml")
        attachment = {k: v for k, v in base.items() if k in ("type", "pic_file",
                                                             "pic_media_id", "appid")}
        attachment.update(title=product.name, page=product.page, sku=sku)
        try:
            if guide:
                attachment = (await self._tracker(tenant, guide, [attachment], CAMPAIGN))[0]
            attachment = (await self._pictures(tenant, [attachment]))[0]
        except ValidationFailed as exc:
            return Card(None, f"card not sent: {exc}")
        except (WeComError, OSError) as exc:
            log.warning("kf card picture tenant=%s: %s", tenant, type(exc).__name__)
            return Card(None, "card not sent: its picture could not be uploaded")
        appid = self._settings.tenant(tenant).miniprogram_appid or str(base.get("appid", ""))
        title = product.name.encode()[:TITLE_BYTES].decode(errors="ignore")
        return Card({"msgtype": "miniprogram", "miniprogram": {
            "appid": appid, "title": title, "thumb_media_id": attachment["pic_media_id"],
            "pagepath": attachment["page"]}}, "")

    def shown(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """A sent kf/send_msg body's card as the customer saw it, in the shape the console's
        card partial takes (templates/console/_card.html): a mini-program card (its product
        found by its page, for the price), a link card or a picture; None for a text."""
        kind = str(body.get("msgtype", ""))
        part = body.get(kind)
        part = part if isinstance(part, dict) else {}
        card: dict[str, Any] = {"type": kind, "title": str(part.get("title", "")),
                                "desc": str(part.get("desc", "")),
                                "url": str(part.get("url", "")), "page": "", "sku": "",
                                "price_fen": None, "picture": ""}
        if kind == "miniprogram":
            page = str(part.get("pagepath", ""))
            product = next((p for p in self._catalog.products.values()
                            if page == p.page or page.startswith((f"{p.page}&",
                                                                  f"{p.page}?"))), None)
            card.update(page=product.page if product else page.split("?", 1)[0],
                        sku=product.sku if product else "",
                        price_fen=product.price_fen if product else None)
            return card
        if kind == "link":
            return card
        if kind == "image":
            return {**card, "type": "picture"}
        return None
