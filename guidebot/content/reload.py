"""Hot reload of content_library: notice edited files, validate, swap the library and the
chat content in place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guidebot.content.chat import ChatContent, load_chat_content
from guidebot.content.errors import ContentInvalid, Problem
from guidebot.content.files import content_digest, library_files
from guidebot.content.library import Library, Rejection, load_library

log = logging.getLogger(__name__)

# removed message ids → for each one still to be sent, what sends it (SopService.messages_in_use)
InUse = Callable[[Sequence[str]], Awaitable[dict[str, str]]]
IN_USE_RECHECK = timedelta(minutes=1)  # how often an edit refused for that is looked at again


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


Candidate = tuple[Library, ChatContent | None]


def _candidate(root: Path, with_chat: bool) -> tuple[str, Candidate | list[Problem]]:
    """The files' digest and either their library (and, `with_chat`, their chat content,
    checked against the library's messages as `guidebot check` does) or what is wrong with
    them (file I/O: runs in a worker thread)."""
    digest = content_digest(root)
    if not library_files(root):  # a moved or half-copied folder must not disable every SOP
        return digest, [Problem(root, None, "no library files found (messages/, sops/, "
                                            "drops/, tags.toml)")]
    try:
        library = load_library(root)
        chat = load_chat_content(root, set(library.messages)) if with_chat else None
    except ContentInvalid as exc:
        return digest, list(exc.problems)
    return digest, (library, chat)


async def reload_library(library: Library, *, chat: ChatContent | None = None,
                         settle: bool = True, in_use: InUse | None = None) -> ReloadOutcome:
    """One look at the files. A change is loaded once the files are the same on two looks
    in a row (`settle`: an editor or a deploy may be half way through writing them); a valid
    library replaces the content in place, with the `chat` content in force when given
    (replies/, faq/, chat/: validated with the library, swapped with it), an invalid one is
    logged with file:line and the content in force stays. An edit that removes a message
    still to be sent (`in_use`) is refused the same way, and looked at again every
    IN_USE_RECHECK until nothing sends it. Call from one task at a time (the scheduler job
    does)."""
    digest = await asyncio.to_thread(content_digest, library.root)
    if digest == library.digest:
        if library.rejected is not None:
            log.info("content_library is back to the version in force; edit problems cleared")
        library.rejected, library.settling = None, ""
        return ReloadOutcome("unchanged")
    if library.rejected is not None and digest == library.rejected.digest and (
            not library.rejected.in_use
            or datetime.now(UTC) - library.rejected.at < IN_USE_RECHECK):
        return ReloadOutcome("rejected")
    if settle and digest != library.settling:
        library.settling = digest
        return ReloadOutcome("settling")
    seen, candidate = await asyncio.to_thread(_candidate, library.root, chat is not None)
    if settle and seen != digest:  # changed again while loading: wait for it to settle
        library.settling = seen
        return ReloadOutcome("settling")
    if isinstance(candidate, list):
        _reject(library, digest, candidate)
        return ReloadOutcome("rejected")
    loaded, loaded_chat = candidate
    removed = sorted(set(library.messages) - set(loaded.messages))
    busy = await in_use(removed) if removed and in_use is not None else {}
    if busy:
        _reject(library, digest, [Problem(
            library.messages[m].file, None, f"message {m!r} is removed but still to be sent "
            f"({why}); keep the file until they are sent") for m, why in busy.items()],
            in_use=True)
        return ReloadOutcome("rejected")
    tags_changed = loaded.tag_groups != library.tag_groups
    library.replace_with(loaded)
    if chat is not None and loaded_chat is not None:  # with the library: no await between
        chat.replace_with(loaded_chat)
    log.info("content_library reloaded: %s SOPs, %s drops, %s messages%s", len(library.sops),
             len(library.drops), len(library.messages),
             "" if chat is None else f", {len(chat.replies)} keyword replies, "
                                     f"{len(chat.faqs)} FAQ entries")
    return ReloadOutcome("replaced", tags_changed=tags_changed)


def _reject(library: Library, digest: str, problems: list[Problem], *,
            in_use: bool = False) -> None:
    library.rejected = Rejection(digest, tuple(problems), datetime.now(UTC), in_use)
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
