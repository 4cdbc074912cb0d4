"""SOP versions: each distinct content of a file becomes a numbered version in the database."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from guidebot.content.sop_spec import SopSpec, sop_from_json
from guidebot.db.engine import Database
from guidebot.db.repo import sop_console as switches_repo
from guidebot.db.repo import sop_plan as repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Current:
    version: int
    spec: SopSpec
    enabled: bool  # the file enables it and HQ has not switched it off
    switched_off: bool = False


async def sync(db: Database, tenant: str, specs: Mapping[str, SopSpec]) -> dict[str, Current]:
    """Record a new version for every changed, new or removed SOP; return the newest ones.

    A removed file becomes a disabled version, so its enrollments stop instead of erroring.
    """
    async with db.write() as s:
        latest = await repo.latest_versions(s, tenant=tenant)
        for sop_id, spec in specs.items():
            row = latest.get(sop_id)
            if row is not None and row.digest == spec.digest() and row.enabled == spec.enabled:
                continue
            number = (row.version if row else 0) + 1
            await repo.add_version(s, tenant=tenant, sop_id=sop_id, version=number,
                                   digest=spec.digest(), enabled=spec.enabled,
                                   spec=spec.to_json())
            log.info("sop %s tenant=%s is now version %s", sop_id, tenant, number)
        for sop_id, row in latest.items():
            if sop_id not in specs and row.enabled:
                await repo.add_version(s, tenant=tenant, sop_id=sop_id,
                                       version=row.version + 1, digest=row.digest,
                                       enabled=False, spec=row.spec)
    return await current(db, tenant)


# Parsed specs by content digest: a version row never changes and equal digests are equal
# content, so every add reads three small columns instead of parsing each SOP's JSON again.
_PARSED: dict[str, SopSpec] = {}
_PARSED_MAX = 4096


async def current(db: Database, tenant: str) -> dict[str, Current]:
    """Each SOP's newest version (read from the database every time: another process or a
    reload may have written one)."""
    async with db.read() as s:
        heads = await repo.newest_version_heads(s, tenant=tenant)
        off = await switches_repo.switched_off(s, tenant=tenant)
        missing = {sop_id: version for sop_id, (version, digest, _) in heads.items()
                   if digest not in _PARSED}
        texts = {sop_id: await repo.version_spec(s, tenant=tenant, sop_id=sop_id,
                                                 version=version)
                 for sop_id, version in missing.items()}
    if len(_PARSED) > _PARSED_MAX:
        _PARSED.clear()
    found: dict[str, Current] = {}
    for sop_id, (version, digest, enabled) in heads.items():
        spec = _PARSED.get(digest)
        if spec is None:
            text = texts.get(sop_id)
            if text is None:  # removed meanwhile: the next read sees it
                continue
            spec = _PARSED[digest] = sop_from_json(text)
        found[sop_id] = Current(version, spec, enabled and sop_id not in off, sop_id in off)
    return found
