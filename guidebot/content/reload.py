"""Hot reload of content_library: notice edited files, validate, swap the library in place."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from guidebot.content.errors import ContentInvalid, Problem
from guidebot.content.files import content_digest, library_files
from guidebot.content.library import Library, Rejection, load_library

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadOutcome:
    # unchanged | settling (changed since the last look: loaded if still so next time)
    # | replaced | rejected (invalid: the library in force stays)
    status: str
    tags_changed: bool = False

    @property
    def replaced(self) -> bool:
        return self.status == "replaced"


async def library_is_newest(library: Library) -> bool:
    """Whether `library` is the newest valid content: its files are unchanged since it was
    loaded, or what changed was rejected. SOP versions are recorded only from such a library,
    so a process that has not reloaded yet never records older content over a newer version
    another process recorded (True when the library's origin is unknown)."""
    if not library.digest:
        return True
    on_disk = await asyncio.to_thread(content_digest, library.root)
    return on_disk == library.digest or (library.rejected is not None
                                         and on_disk == library.rejected.digest)


def _candidate(root: Path) -> tuple[str, Library | list[Problem]]:
    """The files' digest and either their library or what is wrong with them (file I/O:
    runs in a worker thread)."""
    digest = content_digest(root)
    if not library_files(root):  # a moved or half-copied folder must not disable every SOP
        return digest, [Problem(root, None, "no library files found (messages/, sops/, "
                                            "drops/, tags.toml)")]
    try:
        return digest, load_library(root)
    except ContentInvalid as exc:
        return digest, list(exc.problems)


async def reload_library(library: Library, *, settle: bool = True) -> ReloadOutcome:
    """One look at the files. A change is loaded once the files are the same on two looks
    in a row (`settle`: an editor or a deploy may be half way through writing them); a valid
    library replaces the content in place, an invalid one is logged with file:line and the
    library in force stays. Call from one task at a time (the scheduler job does)."""
    digest = await asyncio.to_thread(content_digest, library.root)
    if digest == library.digest:
        if library.rejected is not None:
            log.info("content_library is back to the version in force; edit problems cleared")
        library.rejected, library.settling = None, ""
        return ReloadOutcome("unchanged")
    if library.rejected is not None and digest == library.rejected.digest:
        return ReloadOutcome("rejected")
    if settle and digest != library.settling:
        library.settling = digest
        return ReloadOutcome("settling")
    seen, loaded = await asyncio.to_thread(_candidate, library.root)
    if settle and seen != digest:  # changed again while loading: wait for it to settle
        library.settling = seen
        return ReloadOutcome("settling")
    if isinstance(loaded, list):
        _reject(library, digest, loaded)
        return ReloadOutcome("rejected")
    tags_changed = loaded.tag_groups != library.tag_groups
    library.replace_with(loaded)
    log.info("content_library reloaded: %s SOPs, %s drops, %s messages", len(library.sops),
             len(library.drops), len(library.messages))
    return ReloadOutcome("replaced", tags_changed=tags_changed)


def _reject(library: Library, digest: str, problems: list[Problem]) -> None:
    library.rejected = Rejection(digest, tuple(problems), datetime.now(UTC))
    library.settling = ""
    for problem in problems:  # file:line and what is wrong; never the message texts
        log.error("content_library edit rejected: %s", _relative(library.root, problem))
    log.error("content_library: %s problem(s); the library in force stays until they are "
              "fixed", len(problems))


def _file(root: Path, problem: Problem) -> str:
    try:
        return problem.file.relative_to(root).as_posix()
    except ValueError:
        return str(problem.file)


def _relative(root: Path, problem: Problem) -> str:
    where = _file(root, problem) + (f":{problem.line}" if problem.line else "")
    return f"{where}: {problem.message}"


def problems_json(library: Library) -> list[dict[str, object]]:
    """The newest rejected edit's problems, for the admin API (files relative to the root)."""
    if library.rejected is None:
        return []
    return [{"file": _file(library.root, p), "line": p.line, "message": p.message}
            for p in library.rejected.problems]
