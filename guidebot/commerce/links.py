"""Tracked mini-program links: short server-side tokens, card JSON and visit touches."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.commerce.identity import resolve_local
from guidebot.commerce.schema import CustomerRef
from guidebot.content.catalog import MAX_TITLE_BYTES, Catalog
from guidebot.db.engine import Database
from guidebot.db.models_commerce import Touch, TrackedLink
from guidebot.db.repo import commerce_links as repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.errors import ValidationFailed
from guidebot.settings import TenantSettings

TOKEN_BYTES = 9  # 72 bits, 12 URL-safe characters
MAX_PAGE_BYTES = 128  # FACTS §mini-program cards: keep `page` ≤ 128 bytes
MAX_DWELL_S = 24 * 3600  # a beacon claiming more is clipped
VISIT_WINDOW_S = 300  # a signed visit's `ts` may be this far from the server's clock
IDENTITY_FIELDS = ("external_userid", "unionid", "openid")

# Told, inside the visit's transaction, of a touch that names a customer (a signed visit
# resolved to them, or any visit of a link made for them alone): (session, touch, customer).
# The 互动雷达 (guidebot/alerts/radar.py) and 自动打标签 (guidebot/contacts/auto_tags.py)
# stage their events here.
CardOpened = Callable[[AsyncSession, Touch, str], Awaitable[None]]


def announce_to(*listeners: CardOpened) -> CardOpened:
    """One `CardOpened` that tells each of `listeners` in turn, in the same transaction."""

    async def tell(session: AsyncSession, touch: Touch, customer: str) -> None:
        for listener in listeners:
            await listener(session, touch, customer)

    return tell


async def _nobody_listens(_session: AsyncSession, _touch: Touch, _customer: str) -> None:
    return None


@dataclass(frozen=True)
class LinkRequest:
    guide: str
    sku: str = ""
    page: str = ""
    campaign: str = ""
    customer: str | None = None
    title: str = ""
    pic_media_id: str = ""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def stable_token(key: str, *parts: str) -> str:
    """A token that is the same for the same guide, step and product (no link per send),
    unguessable without the tenant's secret: HMAC-SHA256, first 72 bits, URL-safe."""
    digest = hmac.new(key.encode(), "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:TOKEN_BYTES]).decode()


def tracked_page(page: str, token: str) -> str:
    """`page` with the token in its query; the path must end in .html (FACTS)."""
    path, _, query = page.partition("?")
    if not path.endswith(".html"):
        raise ValidationFailed("page: must end in .html before the query")
    full = f"{path}?{query}&t={token}" if query else f"{path}?t={token}"
    if len(full.encode()) > MAX_PAGE_BYTES:
        raise ValidationFailed(f"page: longer than {MAX_PAGE_BYTES} bytes with the token")
    return full


def card(appid: str, title: str, page: str, pic_media_id: str = "") -> dict[str, Any]:
    """The WeCom miniprogram attachment (群发/欢迎语 shape, FACTS)."""
    return {"msgtype": "miniprogram", "miniprogram": {
        "title": title, "pic_media_id": pic_media_id, "appid": appid, "page": page}}


def visit_message(token: str, query: Mapping[str, str]) -> str:
    """What the store backend signs for a visit: `t` (the card's token), `ts` and the identity
    fields present, sorted by name, as `name=value` (values percent-encoded, RFC 3986
    unreserved characters kept) joined with `&`."""
    fields = {"t": token, **{k: query[k] for k in (*IDENTITY_FIELDS, "ts") if query.get(k)}}
    return "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(fields.items()))


def sign_visit(secret: str, token: str, query: Mapping[str, str]) -> str:
    """hex(HMAC-SHA256(order secret, visit_message)): the beacon's `sig`."""
    return hmac.new(secret.encode(), visit_message(token, query).encode(),
                    hashlib.sha256).hexdigest()


def visit_proven(secret: str, token: str, query: Mapping[str, str], now: datetime) -> bool:
    """The store backend signed this visit's identity (constant-time compare), recently."""
    sig, ts = query.get("sig", ""), query.get("ts", "")
    if not secret or not sig or not ts.isdigit() or len(ts) > 12:
        return False
    if abs(now.timestamp() - int(ts)) > VISIT_WINDOW_S:
        return False
    return hmac.compare_digest(sign_visit(secret, token, query).encode(),
                               sig.strip().lower().encode())


class LinkService:
    def __init__(self, db: Database, catalog: Catalog,
                 order_secret: Callable[[str], str] = lambda _tenant: "",
                 opened: CardOpened | None = None) -> None:
        self._db = db
        self.catalog = catalog
        self._order_secret = order_secret
        self._opened = opened or _nobody_listens

    async def create(self, tenant: TenantSettings, req: LinkRequest) -> dict[str, Any]:
        product = self.catalog.get(req.sku)
        title = req.title or (product.name if product else self.catalog.default_card_title)
        if len(title.encode()) > MAX_TITLE_BYTES:
            raise ValidationFailed(f"title: longer than {MAX_TITLE_BYTES} bytes")
        token = new_token()
        page = tracked_page(req.page or (product.page if product else self.catalog.default_page),
                            token)
        async with self._db.write() as s:
            await contacts_repo.ensure_guide(s, tenant=tenant.id, userid=req.guide)
            await repo.add_link(s, link=TrackedLink(
                tenant=tenant.id, token=token, guide=req.guide, sku=req.sku, page=page,
                campaign=req.campaign, customer=req.customer))
        return {"token": token, "page": page,
                "card": card(tenant.miniprogram_appid, title, page, req.pic_media_id)}

    async def track_attachments(self, tenant: TenantSettings, guide: str,
                                attachments: list[dict[str, Any]],
                                campaign: str) -> list[dict[str, Any]]:
        """Library attachments with every `miniprogram` + `sku` page tracked for this guide and
        campaign (e.g. "sop:<id>:<step>"); the same guide/step/sku reuses one link."""
        out = []
        for attachment in attachments:
            sku = attachment.get("sku")
            if attachment.get("type") != "miniprogram" or not sku:
                out.append(attachment)
                continue
            base = str(attachment.get("page") or "")
            token = stable_token(tenant.order_secret or tenant.admin_token, tenant.id, guide,
                                 campaign, sku, base)
            page = tracked_page(base, token)
            async with self._db.write() as s:
                if await repo.get_link(s, tenant=None, token=token) is None:
                    await contacts_repo.ensure_guide(s, tenant=tenant.id, userid=guide)
                    await repo.add_link_once(s, link=TrackedLink(
                        tenant=tenant.id, token=token, guide=guide, sku=str(sku), page=page,
                        campaign=campaign[:64]))
            out.append({**attachment, "page": page})
        return out

    async def visit(self, token: str, query: Mapping[str, str], at: datetime) -> str | None:
        """Record a visit beacon; the link's tenant, or None for an unknown token.

        Only a visit whose identity the store backend signed (visit_proven) is a touch that
        attribution counts; any other is an anonymous click (kind `click`, no customer ids),
        kept for the card's statistics. A touch naming a customer (the signed visitor, or the
        customer a link was made for) is announced to `opened` in the same transaction."""
        dur = _dwell(query.get("dur"))
        async with self._db.write() as s:
            link = await repo.get_link(s, tenant=None, token=token)
            if link is None:
                return None
            sku = (query.get("sku") or link.sku)[:64]
            touch = Touch(tenant=link.tenant, guide=link.guide, token=token, kind="click",
                          sku=sku, category=self.catalog.category(sku), dur_s=dur, at=at)
            if visit_proven(self._order_secret(link.tenant), token, query, at):
                ref = CustomerRef(*(query.get(k) or None for k in IDENTITY_FIELDS))
                touch.kind, touch.unionid, touch.openid = "visit", ref.unionid, ref.openid
                touch.external_userid = await resolve_local(s, link.tenant, ref) or link.customer
            await repo.add_touch(s, touch=touch)
            customer = touch.external_userid or link.customer
            if customer:
                await self._opened(s, touch, customer)
        return link.tenant


def _dwell(raw: str | None) -> int:
    if raw in (None, ""):
        return 0
    try:
        value = int(str(raw))
    except ValueError:
        raise ValidationFailed("dur: must be a whole number of seconds") from None
    if value < 0:
        raise ValidationFailed("dur: must not be negative")
    return min(value, MAX_DWELL_S)
