"""Materials: made by HQ (library files, the admin API) or contributed by guides, reviewed
(approve with a grade, reject with a reason, withdraw), found, used and counted.

A guide's material starts `pending`; only `pending` can be approved or rejected, and a
withdrawn one stays withdrawn. Every edit is a new version (material_versions keeps each).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from guidebot.app_quota import AppQuota
from guidebot.contacts.welcome import to_wecom_attachment
from guidebot.content.catalog import Catalog
from guidebot.content.files import library_file_problem
from guidebot.content.materials import (
    RESERVED,
    VIDEO_BYTES,
    Content,
    MaterialLibrary,
    content_problems,
    is_mp4,
)
from guidebot.db.engine import Database
from guidebot.db.models_materials import Material, MaterialUse
from guidebot.db.repo import materials as repo
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, StateConflict, ValidationFailed
from guidebot.materials.points import Points
from guidebot.materials.storage import PictureRefused, PictureStore
from guidebot.outbox import Executor, Outbox
from guidebot.settings import GRADES, Settings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

REVIEW_TEXT = "material_review"
TEXT_BYTES = 2048  # message/send text.content limit (FACTS §3.7)
QUEUE_LIMIT = 200
SEARCH_LIMIT = 5
MAX_CONTRIBUTED = 5000  # materials summed per contributor report (one stats read each)
CHANNELS = ("send", "moment", "card")
Tracker = Callable[[str, str, list[dict[str, Any]], str], Awaitable[list[dict[str, Any]]]]
Pictures = Callable[[str, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class TaskMaterial:
    """A stored material as an SOP task sends it: its text and WeCom attachments."""

    text: str
    attachments: tuple[dict[str, Any], ...]


class WrongStatus(StateConflict):
    """A step the material's status does not allow: answered 409 (admin API, sidebar)."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _columns(content: Content) -> dict[str, Any]:
    return {"title": content.title, "text": content.text,
            "pictures": _dumps(list(content.pictures)), "video": content.video,
            "link": _dumps(dict(content.link)), "skus": _dumps(list(content.skus)),
            "categories": _dumps(list(content.categories)),
            "occasions": _dumps(list(content.occasions)),
            "digest": hashlib.sha256(_dumps(content.as_json()).encode()).hexdigest()}


def content_of(m: Material) -> Content:
    return Content(title=m.title, text=m.text, pictures=tuple(json.loads(m.pictures)),
                   video=m.video, link=tuple(sorted(json.loads(m.link).items())),
                   skus=tuple(json.loads(m.skus)), categories=tuple(json.loads(m.categories)),
                   occasions=tuple(json.loads(m.occasions)))


def view(m: Material) -> dict[str, Any]:
    return {"id": m.id, "source": m.source, "contributor": m.contributor,
            **content_of(m).as_json(), "flags": json.loads(m.flags), "status": m.status,
            "reason": m.reason, "grade": m.grade, "version": m.version,
            "reviewed_by": m.reviewed_by,
            "reviewed_at": m.reviewed_at.isoformat() if m.reviewed_at else None,
            "created_at": m.created_at.isoformat(), "updated_at": m.updated_at.isoformat()}


def summary(text: str, limit: int = 30) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


class MaterialService:
    def __init__(self, settings: Settings, db: Database, library: MaterialLibrary,
                 catalog: Catalog, outbox: Outbox, client_for: Callable[[str], WeComClient],
                 *, tracker: Tracker, pictures: Pictures, store: PictureStore, points: Points,
                 quota: AppQuota, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings, self.db, self.library, self.catalog = settings, db, library, catalog
        self.outbox, self.store, self.points, self.clock = outbox, store, points, clock
        self._client_for, self._quota = client_for, quota
        self._tracker, self._pictures = tracker, pictures

    # -- making materials ------------------------------------------------------------------

    def check(self, content: Content) -> None:
        problems = content_problems(content)
        if problems:
            raise problems[0]

    async def create(self, tenant: str, content: Content, *, source: str, contributor: str = "",
                     material_id: str = "", grade: str = "", editor: str = "") -> Material:
        """A new material: an HQ one given a grade is approved at once, any other waits for
        review. With `material_id` a second create of the same id changes nothing (replays)."""
        self.check(content)
        if material_id in RESERVED:
            raise ValidationFailed(f"id: {material_id!r} is reserved", code="material.reserved",
                                   material_id=material_id)
        now = self.clock()
        approved = source == "hq" and grade in GRADES
        material = Material(
            tenant=tenant, id=material_id or "m-" + secrets.token_hex(6), source=source,
            contributor=contributor, **_columns(content),
            flags=_dumps(self.library.words.found(f"{content.title}\n{content.text}")),
            status="approved" if approved else "pending", grade=grade if approved else "",
            reviewed_by=editor if approved else "", reviewed_at=now if approved else None,
            created_at=now, updated_at=now)
        async with self.db.write() as s:
            added = await repo.add(s, material=material, content=_dumps(content.as_json()),
                                   editor=editor or contributor)
            stored = await repo.get(s, tenant=tenant, material_id=material.id)
        assert stored is not None
        if added:
            log.info("material created tenant=%s id=%s source=%s status=%s", tenant,
                     material.id, source, material.status)
        return stored

    async def keep(self, tenant: str, pictures: Sequence[bytes]) -> tuple[list[str], int]:
        """Store the JPG/PNG pictures (6 B to 10 MB); (their stored names, how many were
        refused)."""
        kept: list[str] = []
        for data in pictures:
            try:
                kept.append(await self.store.save(tenant, data))
            except PictureRefused:
                continue
        return list(dict.fromkeys(kept)), len(pictures) - len(kept)

    async def edit(self, tenant: str, material_id: str, content: Content,
                   editor: str) -> Material:
        """A new version of the content (flags found again); the status stays."""
        self.check(content)
        current = await self.get(tenant, material_id)
        if current.status == "withdrawn":
            raise WrongStatus("status: a withdrawn material cannot be edited",
                              code="material.withdrawn")
        values = {**_columns(content), "flags": _dumps(
            self.library.words.found(f"{content.title}\n{content.text}"))}
        async with self.db.write() as s:
            done = await repo.add_version(
                s, tenant=tenant, material_id=material_id, version=current.version + 1,
                values=values, content=_dumps(content.as_json()), editor=editor,
                at=self.clock())
        if not done:
            raise WrongStatus("version: the material was edited at the same time; try again",
                              code="material.edited_meanwhile")
        return await self.get(tenant, material_id)

    async def sync_library(self, tenant: str) -> int:
        """HQ's library materials into the tenant: new ones approved with their grade, edited
        ones as a new version. Returns how many changed."""
        changed = 0
        for item in self.library.materials.values():
            async with self.db.read() as s:
                found = await repo.get(s, tenant=tenant, material_id=item.id)
            if found is None:
                await self.create(tenant, item.content, source="hq", material_id=item.id,
                                  grade=item.grade, editor="content_library")
                changed += 1
            elif found.source == "hq" and found.digest != _columns(item.content)["digest"]:
                try:
                    await self.edit(tenant, item.id, item.content, "content_library")
                except WrongStatus as exc:  # withdrawn, or another process synced it first
                    log.info("library material %s not synced tenant=%s: %s", item.id,
                             tenant, exc)
                    continue
                changed += 1
        return changed

    async def find(self, tenant: str, material_id: str) -> Material | None:
        async with self.db.read() as s:
            return await repo.get(s, tenant=tenant, material_id=material_id)

    async def get(self, tenant: str, material_id: str) -> Material:
        found = await self.find(tenant, material_id)
        if found is None:
            raise NotFound(f"material_id: no material {material_id!r}", code="material.unknown",
                           material_id=material_id)
        return found

    async def versions(self, tenant: str, material_id: str) -> list[dict[str, Any]]:
        await self.get(tenant, material_id)
        async with self.db.read() as s:
            rows = await repo.versions(s, tenant=tenant, material_id=material_id)
        return [{"version": v.version, "editor": v.editor, "created_at": v.created_at.isoformat(),
                 **json.loads(v.content)} for v in rows]

    # -- review ------------------------------------------------------------------------------

    async def queue(self, tenant: str, status: str = "pending",
                    contributor: str | None = None) -> list[dict[str, Any]]:
        """Materials in `status`, oldest first, each with its contributor's history."""
        async with self.db.read() as s:
            rows = await repo.listing(s, tenant=tenant, status=status or None,
                                      contributor=contributor, limit=QUEUE_LIMIT)
            history = await repo.history(
                s, tenant=tenant, contributors=sorted({m.contributor for m in rows
                                                       if m.contributor}))
        return [{**view(m), "history": history.get(m.contributor, {})} for m in rows]

    async def counts(self, tenant: str) -> dict[str, int]:
        """Materials per status (the review queue's tabs)."""
        async with self.db.read() as s:
            return await repo.status_counts(s, tenant=tenant)

    async def approve(self, tenant: str, material_id: str, grade: str,
                      reviewer: str) -> Material:
        if grade not in GRADES:
            raise ValidationFailed("grade: one of S, A, B, C", code="material.grade")
        return await self._review(tenant, material_id, reviewer, {
            "status": "approved", "grade": grade, "reason": ""})

    async def reject(self, tenant: str, material_id: str, reason: str,
                     reviewer: str) -> Material:
        if not reason.strip():
            raise ValidationFailed("reason: say why (the guide is told)", code="material.reason")
        return await self._review(tenant, material_id, reviewer, {
            "status": "rejected", "reason": reason.strip()[:256], "grade": ""})

    async def withdraw(self, tenant: str, material_id: str, by: str) -> Material:
        """Taken out of use (by HQ, or by its contributor): no longer found or usable."""
        material = await self.get(tenant, material_id)
        async with self.db.write() as s:
            done = await repo.transition(s, tenant=tenant, material_id=material_id,
                                         allowed=("pending", "approved", "rejected"),
                                         values={"status": "withdrawn",
                                                 "updated_at": self.clock()})
        if not done:
            raise WrongStatus(f"status: the material is {material.status}",
                              code="material.withdrawn")
        log.info("material withdrawn tenant=%s id=%s by=%s", tenant, material_id, by)
        return await self.get(tenant, material_id)

    async def _review(self, tenant: str, material_id: str, reviewer: str,
                      values: dict[str, Any]) -> Material:
        material = await self.get(tenant, material_id)
        now = self.clock()
        async with self.db.write() as s:
            done = await repo.transition(
                s, tenant=tenant, material_id=material_id, allowed=("pending",),
                values={**values, "reviewed_by": reviewer, "reviewed_at": now,
                        "updated_at": now})
        if not done:
            raise WrongStatus(f"status: only a pending material can be reviewed; this one is "
                              f"{material.status}", code="material.not_pending")
        reviewed = await self.get(tenant, material_id)
        log.info("material reviewed tenant=%s id=%s status=%s grade=%s", tenant, material_id,
                 reviewed.status, reviewed.grade)
        await self._tell_contributor(reviewed)
        return reviewed

    async def batch(self, tenant: str, ids: Sequence[str], action: str, *, grade: str = "",
                    reason: str = "", reviewer: str = "") -> list[dict[str, Any]]:
        """The same review step for several materials; each answers on its own."""
        results = []
        for material_id in dict.fromkeys(ids):
            try:
                if action == "approve":
                    done = await self.approve(tenant, material_id, grade, reviewer)
                elif action == "reject":
                    done = await self.reject(tenant, material_id, reason, reviewer)
                else:
                    done = await self.withdraw(tenant, material_id, reviewer)
                results.append({"id": material_id, "ok": True, "status": done.status})
            except (NotFound, ValidationFailed) as exc:
                results.append({"id": material_id, "ok": False, "error": str(exc)})
        return results

    async def _tell_contributor(self, material: Material) -> None:
        """The guide who contributed it hears the outcome (once per version and outcome)."""
        if not material.contributor:
            return
        texts = self.library.texts
        title = material.title or summary(material.text, 16)
        if material.status == "approved":
            points = self.settings.tenant(material.tenant).materials.points[material.grade]
            text = texts.text("approved", title=title, grade=material.grade, points=points)
        else:
            text = texts.text("rejected", title=title, reason=material.reason)
        await self.tell(material.tenant, material.contributor, text,
                        f"materials:review:{material.id}:{material.version}:{material.status}")

    async def tell(self, tenant: str, guide: str, text: str, key: str) -> None:
        cut = text.encode()[:TEXT_BYTES].decode(errors="ignore")
        outcome = await self.outbox.run(
            tenant=tenant, key=key, kind=REVIEW_TEXT,
            payload={"touser": guide, "msgtype": "text", "text": {"content": cut}},
            call=self.send)
        log.info("material message tenant=%s guide=%s send=%s", tenant, guide, outcome.status)

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of messages to guides: message/send, within the guide's app
        message budget (guidebot/app_quota.py: over it the outbox holds the message)."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {REVIEW_TEXT: self.send}

    # -- finding and using -------------------------------------------------------------------

    async def search(self, tenant: str, keyword: str) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = await repo.search_approved(s, tenant=tenant, keyword=keyword.strip(),
                                              limit=SEARCH_LIMIT)
        return [view(m) for m in rows]

    async def use(self, tenant_id: str, material_id: str, *, guide: str, channel: str,
                  customer: str = "", key: str = "") -> dict[str, Any]:
        """A guide uses an approved material: the message to send (pictures as live media
        ids, product cards carrying this guide's tracking token), the use recorded, and the
        contributor's points when the guide is someone else (once per guide, material and
        day). The same `key` again records nothing more."""
        if channel not in CHANNELS:
            raise ValidationFailed(f"channel: one of {', '.join(CHANNELS)}",
                                   code="material.channel")
        self.settings.tenant(tenant_id)  # an unknown tenant is refused first
        material = await self.get(tenant_id, material_id)
        if material.status != "approved":
            raise WrongStatus(f"status: only an approved material can be used; this one is "
                              f"{material.status}", code="material.not_approved")
        message = await self.message(tenant_id, material, guide)
        recorded, earned = await self._record(
            material, guide=guide, channel=channel, customers=[customer] if customer else [],
            key=key or f"{guide}:{secrets.token_hex(8)}", token=message["token"])
        return {"material": view(material), "recorded": recorded, "points": earned,
                **message}

    async def _record(self, material: Material, *, guide: str, channel: str,
                      customers: Sequence[str], key: str, token: str) -> tuple[bool, int]:
        """One use under `key` (the same key again records nothing), the customers it reached
        and the contributor's points for it: (recorded, points earned). A use naming one
        customer keeps it on the use row too."""
        tenant = self.settings.tenant(material.tenant)
        now = self.clock()
        use = MaterialUse(tenant=material.tenant, key=key, material_id=material.id,
                          guide=guide, channel=channel,
                          customer=customers[0] if len(customers) == 1 else "",
                          day=now.astimezone(tenant.tz).date().isoformat(), token=token, at=now)
        async with self.db.write() as s:
            recorded = await repo.add_use(s, use=use)
            await repo.add_use_customers(s, tenant=material.tenant, material_id=material.id,
                                         use_key=key, customers=customers)
            earned = await self.points.earn(s, tenant, material, use) if recorded else 0
        log.info("material used tenant=%s id=%s guide=%s channel=%s customers=%s recorded=%s "
                 "points=%s", material.tenant, material.id, guide, channel, len(customers),
                 recorded, earned)
        return recorded, earned

    # -- sent by SOP tasks and drops ---------------------------------------------------------

    async def for_task(self, tenant: str, material_id: str, guide: str, *,
                       moment: bool = False) -> TaskMaterial | str:
        """A stored material an SOP step or drop names, as `guide` sends it (pictures as live
        media ids, product cards with this guide's tracking token; for a `moment`, what a
        moment carries); or why it cannot be sent: missing, not approved, or withdrawn (files
        name such ids before they exist), or not fit for a moment."""
        material = await self.find(tenant, material_id)
        if material is None:
            return f"material {material_id!r} does not exist"
        if material.status != "approved":
            return f"material {material_id!r} is {material.status}, not approved"
        if moment:
            return await self._for_moment(tenant, material)
        try:
            message = await self.message(tenant, material, guide)
        except ValidationFailed as exc:  # e.g. its product page cannot take a tracking token
            return f"material {material_id!r} cannot be sent: {exc}"
        return TaskMaterial(text=message["text"], attachments=tuple(message["attachments"]))

    async def _for_moment(self, tenant: str, material: Material) -> TaskMaterial | str:
        """A moment carries text with up to 9 pictures, or one video, or one link (FACTS
        §3.8); a mini-program card it cannot carry, so a material with a product card is
        refused rather than sent without it. Its video is an MP4 under content_library (a
        library material's) uploaded as media/upload type=video; a moment's link takes a title
        and url (WeCom's doc names a picture media_id too, left out: not confirmed)."""
        content = content_of(material)
        if any(self.catalog.get(sku) is not None for sku in content.skus):
            return (f"material {material.id!r} carries a product card (mini-program), which "
                    "a moment cannot carry")
        items: list[dict[str, Any]] = [
            {"type": "image", "file": self._picture_file(tenant, name)}
            for name in content.pictures]
        problem = self._video_problem(content)
        if problem is not None:
            return f"material {material.id!r}: {problem}"
        if content.video:
            items.append({"type": "video", "file": content.video})
        link = dict(content.link)
        if link:
            items.append({"type": "link", "title": link["title"], "url": link["url"]})
        resolved = await self._pictures(tenant, items)
        return TaskMaterial(text=content.text,
                            attachments=tuple(to_wecom_attachment(i, "") for i in resolved))

    async def find_text(self, tenant: str, material_id: str) -> str:
        """An approved material's text ("" for any other): what a task card shows."""
        material = await self.find(tenant, material_id)
        return material.text if material is not None and material.status == "approved" else ""

    async def task_used(self, tenant: str, material_id: str, *, guide: str, channel: str,
                        key: str, token: str, customers: Sequence[str] = ()) -> bool:
        """A task sent the material: one use under `key` (a retry records nothing more), the
        `customers` it reached, the contributor's points when `guide` is someone else. False
        when no such material is stored (a library material not synced yet)."""
        material = await self.find(tenant, material_id)
        if material is None:
            log.warning("material use not recorded tenant=%s id=%s: not stored", tenant,
                        material_id)
            return False
        recorded, _ = await self._record(material, guide=guide, channel=channel,
                                         customers=list(customers), key=key, token=token)
        return recorded

    async def message(self, tenant: str, material: Material, guide: str) -> dict[str, Any]:
        """What the guide sends: text and WeCom attachments; `token` is the card's tracking
        token ("" when the material names no product)."""
        content = content_of(material)
        items: list[dict[str, Any]] = [
            {"type": "image", "file": self._picture_file(tenant, name)}
            for name in content.pictures]
        problem = self._video_problem(content)
        if problem is not None:  # a task fails with it, a sidebar use answers 400
            raise ValidationFailed(problem, code="material.video")
        if content.video:
            items.append({"type": "video", "file": content.video})
        link = dict(content.link)
        if link:
            items.append({"type": "link", **link})
        product = next((p for p in map(self.catalog.get, content.skus) if p is not None), None)
        # A mini-program card must show a picture (pic_media_id): the material's first one.
        # A material without pictures (a video or a link) sends no card.
        if product is not None and content.pictures and len(items) < 9:
            items.append({"type": "miniprogram", "title": product.name[:20],
                          "page": product.page, "sku": product.sku,
                          "pic_file": self._picture_file(tenant, content.pictures[0])})
        tracked = await self._tracker(tenant, guide, items, f"material:{material.id}")
        token = next((parse_qs(urlsplit(i["page"]).query).get("t", [""])[0] for i in tracked
                      if i["type"] == "miniprogram"), "")
        resolved = await self._pictures(tenant, tracked)
        appid = self.settings.tenant(tenant).miniprogram_appid
        return {"text": content.text, "video": content.video, "token": token,
                "attachments": [to_wecom_attachment(i, appid) for i in resolved]}

    def _video_problem(self, content: Content) -> str | None:
        """Why the material's video cannot be sent (None: it can, or there is none). A stored
        material's video is a name kept as given; it goes out (media/upload type=video) only
        as an MP4 of 6 B to 10 MB inside content_library, checked now, when it is sent."""
        if not content.video:
            return None
        problem = library_file_problem(self.settings.content_library, content.video,
                                       VIDEO_BYTES, "MP4", is_mp4)
        return None if problem is None else f"video {problem}"

    def _picture_file(self, tenant: str, name: str) -> str:
        """A library picture's path inside content_library, or a stored picture's path."""
        return name if "/" in name else str(self.store.path(tenant, name))

    # -- what it sold ------------------------------------------------------------------------

    async def stats(self, tenant: str, material_id: str) -> dict[str, Any]:
        material = await self.get(tenant, material_id)
        async with self.db.read() as s:
            uses, customers, tokens = await repo.use_figures(s, tenant=tenant,
                                                             material_id=material_id)
            opens = await repo.card_opens(s, tenant=tenant, tokens=tokens)
            orders, gmv = await repo.attributed_orders(s, tenant=tenant, tokens=tokens)
        return {"id": material.id, "contributor": material.contributor,
                "grade": material.grade, "uses": uses, "customers_reached": customers,
                "card_opens": opens, "orders": orders, "gmv_fen": gmv}

    async def contributors(self, tenant: str, period: str) -> list[dict[str, Any]]:
        """Per guide who contributed: materials per status, the summed figures of their
        approved materials, and their points in `period`; most points first."""
        board = {row["guide"]: row for row in
                 (await self.points.leaderboard(tenant, period))["guides"]}
        async with self.db.read() as s:
            rows = await repo.listing(s, tenant=tenant, status=None, contributor=None,
                                      limit=MAX_CONTRIBUTED)
        out: dict[str, dict[str, Any]] = {}
        for material in rows:
            if not material.contributor:
                continue
            row = out.setdefault(material.contributor, {
                "guide": material.contributor, "materials": {}, **dict.fromkeys(FIGURES, 0),
                "points": board.get(material.contributor, {}).get("points", 0)})
            row["materials"][material.status] = row["materials"].get(material.status, 0) + 1
            if material.status == "approved":
                figures = await self.stats(tenant, material.id)
                for name in FIGURES:
                    row[name] += figures[name]
        return sorted(out.values(), key=lambda r: (-r["points"], -r["gmv_fen"], r["guide"]))


FIGURES = ("uses", "customers_reached", "card_opens", "orders", "gmv_fen")


def with_pictures(content: Content, pictures: Sequence[str]) -> Content:
    return replace(content, pictures=tuple(pictures))
