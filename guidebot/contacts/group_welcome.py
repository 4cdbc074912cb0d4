"""Group welcome templates (入群欢迎语): content_library/group_welcome.toml kept in WeCom.

Each template in the file is created in WeCom (group_welcome_template/add), edited when its
message changes (…/edit) and deleted when it leaves the file (…/del), FACTS-next §C.4. A
check runs every minute and after each library reload: it compares each template's content
(its text and attachment, and the content of the picture file it names, so a picture replaced
under the same name is an edit) with what was last sent, so an unchanged library calls
nothing. Every call goes through the outbox, and what WeCom answered
(`template_id`) is recorded in the transaction that ends the call, so a call retried later
records it too. Owners apply a template to their groups in the WeCom client (`notify` asks
WeCom to tell members about it); the API sends no message itself [unconfirmed mechanics].
A picture is uploaded with media/upload like every attachment; whether WeCom keeps a
template's picture after the media id's 3 days is not in FACTS, so an edit re-uploads it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from guidebot.content.files import file_digest
from guidebot.content.library import Library
from guidebot.content.media import MediaUploads
from guidebot.db.engine import Database
from guidebot.db.repo import group_welcome as repo
from guidebot.db.types import utcnow
from guidebot.outbox import CallStatus, Done, Executor, Outbox
from guidebot.settings import Settings
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "group_welcome"  # the outbox kind (not a message: nothing is sent to anyone)


def content_of(message: Any, notify: bool) -> dict[str, Any]:
    """A template's content as the file gives it (picture files by name)."""
    content: dict[str, Any] = {"notify": 1 if notify else 0}
    if message.text.strip():
        content["text"] = {"content": message.text.strip()}
    for item in message.attachments[:1]:
        kind = item["type"]
        content[kind] = {k: v for k, v in item.items() if k not in ("type", "sku")}
    return content


def picture_names(content: dict[str, Any]) -> list[str]:
    """The picture files a template's content names: an image's `file`, a card's `pic_file`."""
    names = [body.get(key) for kind, key in (("image", "file"), ("miniprogram", "pic_file"))
             if isinstance(body := content.get(kind), dict)]
    return [n for n in names if isinstance(n, str) and n]


def digest_of(content: dict[str, Any], pictures: dict[str, str] | None = None) -> str:
    """What WeCom should hold: the content, and the sha256 of each picture file it names
    (`pictures`, by name). A template without pictures digests as before they were counted;
    one with a picture was edited once in WeCom after the change that counted them."""
    keyed = {**content, "picture_sha256": pictures} if pictures else content
    return hashlib.sha256(json.dumps(keyed, sort_keys=True,
                                     ensure_ascii=False).encode()).hexdigest()[:32]


class GroupWelcomeSync:
    def __init__(self, settings: Settings, db: Database, library: Library, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], media: MediaUploads) -> None:
        self._settings, self._db, self._library, self._outbox = settings, db, library, outbox
        self._client_for, self._media = client_for, media
        # each change (tenant, name, what WeCom holds → what the file says) asked once by this
        # process: a call that failed is the outbox's to retry (and record), not a new
        # attempt every minute
        self._asked: set[tuple[str, str, str, str]] = set()

    async def sync(self, tenant_id: str) -> dict[str, int]:
        """Bring WeCom's templates in line with the file: {added, edited, removed, failed}."""
        tenant = self._settings.tenant(tenant_id)
        async with self._db.read() as s:
            stored = await repo.templates(s, tenant=tenant.id)
        counts = {"added": 0, "edited": 0, "removed": 0, "failed": 0}
        wanted = {t.id: t for t in self._library.group_welcome}
        for name, spec in wanted.items():
            message = self._library.messages.get(spec.message)
            if message is None:  # the library refused an edit that removed it: keep as is
                continue
            content = content_of(message, spec.notify)
            digest = digest_of(content, await asyncio.to_thread(self._pictures, content))
            row = stored.get(name)
            change = (tenant.id, name, f"{row.template_id}:{row.digest}" if row else "", digest)
            if (row is not None and row.digest == digest) or change in self._asked:
                continue
            body = await self._body(tenant.id, content, tenant.miniprogram_appid)
            self._asked.add(change)
            payload = {"op": "add" if row is None else "edit", "name": name, "digest": digest,
                       "body": body if row is None else {**body,
                                                         "template_id": row.template_id}}
            counts["added" if row is None else "edited"] += await self._run(tenant.id, payload,
                                                                            counts)
        for name, row in stored.items():
            gone = (tenant.id, name, f"{row.template_id}:{row.digest}", "")
            if name not in wanted and gone not in self._asked:
                self._asked.add(gone)
                counts["removed"] += await self._run(tenant.id, {
                    "op": "del", "name": name, "digest": row.digest,
                    "body": {"template_id": row.template_id}}, counts)
        if any(counts.values()):
            log.info("group welcome templates tenant=%s %s", tenant.id, counts)
        return counts

    def _pictures(self, content: dict[str, Any]) -> dict[str, str]:
        """sha256 of each picture file the content names ("-" for one that cannot be read:
        the library refuses it when it loads). File I/O: run in a worker thread."""
        hashes: dict[str, str] = {}
        for name in picture_names(content):
            try:
                hashes[name] = file_digest(self._library.root / name)
            except OSError:
                hashes[name] = "-"
        return hashes

    async def _body(self, tenant: str, content: dict[str, Any], appid: str) -> dict[str, Any]:
        """The content with picture files uploaded (media ids) and the mini-program's appid."""
        body = dict(content)
        for kind in ("image", "miniprogram"):
            if kind in body:
                (resolved,) = await self._media.resolve(tenant, [{"type": kind, **body[kind]}])
                body[kind] = {k: v for k, v in resolved.items() if k != "type"}
        if "miniprogram" in body:
            body["miniprogram"].setdefault("appid", appid)
        return body

    async def _run(self, tenant: str, payload: dict[str, Any], counts: dict[str, int]) -> int:
        # One key per attempt: the outbox runs it once and records what WeCom answered.
        key = f"{KIND}:{payload['name']}:{payload['op']}:{secrets.token_hex(6)}"
        outcome = await self._outbox.run(tenant=tenant, key=key, kind=KIND, payload=payload,
                                         call=self.send)
        if outcome.status is CallStatus.DONE:
            return 1
        counts["failed"] += 1
        log.warning("group welcome %s failed tenant=%s name=%s: %s", payload["op"], tenant,
                    payload["name"], outcome.error)
        return 0

    async def send(self, tenant: str, payload: dict[str, Any]) -> Done:
        """The outbox executor of kind "group_welcome": add, edit or del one template, and
        record what WeCom now holds in the same transaction."""
        op, name, digest = payload["op"], payload["name"], payload["digest"]
        answer = await self._client_for(tenant).group_welcome_template(op, payload["body"])
        if op == "del":
            return Done(answer, writes=[repo.forgotten(tenant=tenant, name=name)])
        template_id = str(answer.get("template_id") or payload["body"].get("template_id"))
        return Done(answer, writes=[repo.kept(tenant=tenant, name=name,
                                              template_id=template_id, digest=digest,
                                              at=utcnow())])

    async def listed(self, tenant: str) -> list[dict[str, Any]]:
        """The file's templates with their WeCom template_id and when they were last sent,
        and templates still in WeCom that left the file (for the console)."""
        async with self._db.read() as s:
            stored = await repo.templates(s, tenant=tenant)
        rows = []
        for spec in self._library.group_welcome:
            message = self._library.messages.get(spec.message)
            row = stored.get(spec.id)
            current = (row is not None and message is not None
                       and row.digest == digest_of(content_of(message, spec.notify)))
            rows.append({"id": spec.id, "message": spec.message,
                         "text": message.text.strip() if message else "",
                         "attachment": message.attachments[0]["type"]
                         if message and message.attachments else None,
                         "template_id": row.template_id if row else None,
                         "synced_at": row.synced_at if row else None, "current": current})
        return rows

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send}
