"""Guides contributing from the app chat: pictures, then a text (or `投稿 <text>`), make one
submission; `素材 <keyword>` lists approved materials.

A picture is fetched with media/get as soon as it arrives (its media id lives 3 days) and
kept by guidebot; a refused one (not JPG/PNG, or over 10 MB) is remembered with the reason
and left out. Everything is keyed by the message's MsgId: a replayed callback neither stores
a picture twice nor makes a second submission or a second receipt.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from guidebot.content.materials import Content
from guidebot.db.models_materials import MaterialPiece
from guidebot.db.repo import materials as repo
from guidebot.errors import ValidationFailed
from guidebot.events import AppImageMessage, AppTextMessage
from guidebot.materials.service import MaterialService, summary, view
from guidebot.materials.storage import PictureRefused
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=30)  # pictures wait this long for the text that submits them
MAX_PICTURES = 9
SEARCH_LISTED = 5


def message_id(event: AppTextMessage | AppImageMessage) -> str:
    """The MsgId, or (a message without one) a digest of who sent what when."""
    if event.msg_id:
        return event.msg_id
    what = event.content if isinstance(event, AppTextMessage) else event.media_id
    raw = f"{event.userid}\x1f{event.created_at.isoformat()}\x1f{what}"
    return "d" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def submission_id(tenant: str, msg_id: str) -> str:
    return "g-" + hashlib.sha256(f"{tenant}\x1f{msg_id}".encode()).hexdigest()[:16]


class Contributions:
    def __init__(self, materials: MaterialService,
                 client_for: Callable[[str], WeComClient]) -> None:
        self.materials = materials
        self._client_for = client_for

    async def on_image(self, event: AppImageMessage) -> None:
        """Fetch and keep the picture (a WeCom failure raises: the inbox tries again)."""
        msg_id = message_id(event)
        db = self.materials.db
        async with db.read() as s:
            if await repo.get_piece(s, tenant=event.tenant, msg_id=msg_id) is not None:
                return  # a replayed callback: the picture is kept already
        stored, problem = "", ""
        fetched = await self._client_for(event.tenant).get_media(event.media_id)
        try:
            stored = await self.materials.store.save(event.tenant, fetched["content"])
        except PictureRefused as exc:
            problem = exc.reason
        async with db.write() as s:
            await repo.add_piece(s, piece=MaterialPiece(
                tenant=event.tenant, msg_id=msg_id, guide=event.userid,
                media_id=event.media_id, stored=stored, problem=problem,
                received_at=event.created_at))
        log.info("contributed picture tenant=%s guide=%s msg=%s kept=%s problem=%s",
                 event.tenant, event.userid, msg_id, bool(stored), problem or "-")

    async def upload(self, tenant: str, guide: str, text: str,
                     pictures: list[bytes]) -> tuple[dict[str, Any], int]:
        """The sidebar's upload form: one pending submission of the text and the pictures
        guidebot keeps; (the material, how many pictures were refused)."""
        kept, refused = await self.materials.keep(tenant, pictures[:MAX_PICTURES])
        copy = text.strip()
        if not copy and not kept:
            raise ValidationFailed("text: give a text or at least one JPG/PNG picture",
                                   code="material.contribution_empty")
        material = await self.materials.create(
            tenant, Content(title=summary(copy, 16), text=copy[:2000],
                            pictures=tuple(kept)),
            source="guide", contributor=guide)
        log.info("contributed through the sidebar tenant=%s guide=%s id=%s pictures=%s",
                 tenant, guide, material.id, len(kept))
        return view(material), refused

    async def take_text(self, event: AppTextMessage) -> bool:
        """True when the text belongs to the material centre (handled here): a search, a
        `投稿`, or the copy of pictures sent in the last WINDOW; False for anything else."""
        texts = self.materials.library.texts
        command = texts.command(event.content)
        msg_id = message_id(event)
        if command is not None and command[0] == "search":
            await self._search(event, command[1], msg_id)
            return True
        material_id = submission_id(event.tenant, msg_id)
        db = self.materials.db
        async with db.read() as s:
            if await repo.get(s, tenant=event.tenant, material_id=material_id) is not None:
                return True  # a replay of a submission already made
            pieces = await repo.waiting_pieces(s, tenant=event.tenant, guide=event.userid,
                                               since=event.created_at - WINDOW)
        pieces = [p for p in pieces if p.received_at <= event.created_at][-MAX_PICTURES:]
        if command is None and not pieces:
            return False
        copy = command[1] if command is not None else event.content.strip()
        await self._submit(event, msg_id, material_id, copy, pieces)
        return True

    async def _submit(self, event: AppTextMessage, msg_id: str, material_id: str, copy: str,
                      pieces: list[MaterialPiece]) -> None:
        texts = self.materials.library.texts
        kept = [p.stored for p in pieces if p.stored]
        if not copy and not kept:
            await self.materials.tell(event.tenant, event.userid,
                                      texts.text("contribute_empty"),
                                      f"materials:receipt:{msg_id}")
            return
        content = Content(title=summary(copy, 16), text=copy[:2000],
                          pictures=tuple(dict.fromkeys(kept)))
        material = await self.materials.create(
            event.tenant, content, source="guide", contributor=event.userid,
            material_id=material_id)
        async with self.materials.db.write() as s:
            await repo.claim_pieces(s, tenant=event.tenant,
                                    msg_ids=[p.msg_id for p in pieces], material_id=material_id)
        lines = [texts.text("receipt", title=material.title or material.id,
                            pictures=len(content.pictures))]
        refused = sum(1 for p in pieces if not p.stored)
        if refused:
            lines.append(texts.text("receipt_refused", count=refused))
        flags = self.materials.library.words.found(copy)
        if flags:
            lines.append(texts.text("receipt_flagged", words="、".join(flags)))
        await self.materials.tell(event.tenant, event.userid, "\n".join(lines),
                                  f"materials:receipt:{msg_id}")

    async def _search(self, event: AppTextMessage, keyword: str, msg_id: str) -> None:
        texts = self.materials.library.texts
        if keyword:
            found = await self.materials.search(event.tenant, keyword)
        else:  # 素材 alone: the newest approved ones
            found = (await self.materials.queue(event.tenant, "approved"))[-SEARCH_LISTED:][::-1]
        if not found:
            reply = texts.text("search_none", keyword=keyword)
        else:
            reply = "\n".join([texts.text("search_header", count=len(found)), *(
                texts.text("search_line", grade=m["grade"], title=m["title"] or m["id"],
                           id=m["id"], summary=summary(m["text"])) for m in found)])
        await self.materials.tell(event.tenant, event.userid, reply,
                                  f"materials:search:{msg_id}")
