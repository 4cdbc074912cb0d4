"""The sidebar's materials JSON (for a materials tab): approved materials to send in one tap,
a material's message as the guide sends it (the use counted, the contributor's points), and
the upload form by which a guide contributes a text with pictures.

Same rules as the other sidebar routes: the guide's session for this tenant (401), the CSRF
header on every POST (403).
"""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from guidebot.errors import ValidationFailed, WeComError
from guidebot.settings import TenantSettings
from guidebot.web.keys import SERVICES
from guidebot.web.pages.sidebar_api import guarded, json_object, wecom_refused

LISTED = 20
MAX_PICTURES = 9
MAX_PICTURE_BYTES = 10 * 1024 * 1024
MAX_TEXT_CHARS = 2000
MAX_TEXT_BYTES = 4 * MAX_TEXT_CHARS  # 2,000 characters of up to 4 bytes
HEADERS = {"Cache-Control": "no-store"}
COVER = "/sidebar/_static/card.png"  # the cover of the sidebar's own product cards
PREFIX = "sidebar:"
KEY_CHARS = 55  # "sidebar:" + a userid (≤ 64) + ":" + this fits material_uses.key (128)


async def materials(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    """?keyword= finds approved materials; without one, the newest approved."""
    service = request.app[SERVICES].materials
    keyword = request.query.get("keyword", "").strip()[:64]
    if keyword:
        found = await service.search(tenant.id, keyword)
    else:
        found = (await service.queue(tenant.id, "approved"))[-LISTED:][::-1]
    return web.json_response({"materials": found}, headers=HEADERS)


async def use(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    data = await json_object(request)
    channel, customer, key = (data.get("channel", "send"), data.get("external_userid", ""),
                              data.get("key", ""))
    if not all(isinstance(v, str) for v in (channel, customer, key)):
        raise ValidationFailed("channel, external_userid and key: strings", code="sidebar.body")
    if customer:  # a customer this guide follows, as on every sidebar customer route (404)
        await request.app[SERVICES].sidebar.check_follows(tenant, guide, customer)
    try:
        used = await request.app[SERVICES].materials.use(
            tenant.id, request.match_info["material_id"], guide=guide, channel=channel,
            customer=customer, key=client_key(guide, key))
    except WeComError as exc:
        return wecom_refused("media/upload", exc)
    cover = f"{request.app[SERVICES].settings.server.public_url}{COVER}"
    messages = chat_messages(used["text"], used["attachments"], cover)
    return web.json_response({**used, "messages": messages},
                             status=201 if used["recorded"] else 200, headers=HEADERS)


def client_key(guide: str, key: str) -> str:
    """The use's idempotency key for a sidebar `key`: under the guide's own namespace, so no
    client key can take a key the system gives its uses (an SOP task's `sop-task:<id>`),
    nor another guide's; the same request again keeps its key. No key: a fresh one."""
    return f"{PREFIX}{guide}:{key[:KEY_CHARS]}" if key else ""


def chat_messages(text: str, attachments: list[dict[str, Any]],
                  cover: str) -> list[dict[str, Any]]:
    """The material as sendChatMessage calls, one per piece (FACTS-next §B.6: `image` takes
    `mediaid`, a card `imgUrl` — a URL, so cards show the sidebar's cover picture; WeCom's
    JS-SDK doc lists `video` with `mediaid` too, a media/upload id like a picture's)."""
    out: list[dict[str, Any]] = [{"msgtype": "text", "text": {"content": text}}] if text else []
    for item in attachments:
        kind = item["msgtype"]
        body = item[kind]
        if kind in ("image", "video"):
            out.append({"msgtype": kind, kind: {"mediaid": body["media_id"]}})
        elif kind == "link":
            out.append({"msgtype": "news", "news": {
                "link": body["url"], "title": body["title"], "desc": body.get("desc", ""),
                "imgUrl": body.get("picurl", "")}})
        elif kind == "miniprogram":
            out.append({"msgtype": "miniprogram", "enterChat": False, "miniprogram": {
                "appid": body.get("appid", ""), "title": body["title"], "imgUrl": cover,
                "page": body["page"]}})
    return out


async def _read(part: BodyPartReader, limit: int, too_large: ValidationFailed) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk():
        data.extend(chunk)
        if len(data) > limit:
            raise too_large
    return bytes(data)


async def upload(request: web.Request, tenant: TenantSettings, guide: str) -> web.Response:
    """multipart/form-data: `text` and up to 9 `picture` files (JPG or PNG, ≤ 10 MB each)."""
    if not request.content_type.startswith("multipart/"):
        raise ValidationFailed("body: multipart/form-data with text and picture parts",
                               code="sidebar.upload_form")
    reader = await request.multipart()
    text, pictures = "", list[bytes]()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise ValidationFailed("body: nested multipart is not accepted",
                                   code="sidebar.upload_form")
        if part.name == "text":
            text = (await _read(part, MAX_TEXT_BYTES, ValidationFailed(
                f"text: at most {MAX_TEXT_BYTES} bytes", code="sidebar.upload_text_long",
                most=MAX_TEXT_CHARS))).decode("utf-8", "replace")
        elif part.name == "picture":
            if len(pictures) == MAX_PICTURES:
                raise ValidationFailed(f"picture: at most {MAX_PICTURES}",
                                       code="material.pictures", limit=MAX_PICTURES)
            pictures.append(await _read(part, MAX_PICTURE_BYTES, ValidationFailed(
                f"picture: at most {MAX_PICTURE_BYTES} bytes",
                code="sidebar.upload_picture_large", most_mb=MAX_PICTURE_BYTES // 2**20)))
        else:
            raise ValidationFailed(f"{part.name}: unknown part (text and picture only)",
                                   code="sidebar.upload_form")
    material, refused = await request.app[SERVICES].contributions.upload(
        tenant.id, guide, text, pictures)
    return web.json_response({"material": material, "refused": refused}, status=201,
                             headers=HEADERS)


def routes() -> list[web.RouteDef]:
    base = "/sidebar/{tenant}/materials"
    return [
        web.get(base, guarded(materials)),
        web.post(base, guarded(upload, post=True)),
        web.post(f"{base}/{{material_id}}/use", guarded(use, post=True)),
    ]
