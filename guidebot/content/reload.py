"""Hot reload of content_library: notice edited files, validate, swap the library, the chat
content, the catalog and the materials in place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guidebot.content.catalog import Catalog, load_catalog
from guidebot.content.chat import ChatContent, catalog_problems, load_chat_content
from guidebot.content.errors import ContentInvalid, Problem, line_of
from guidebot.content.files import CATALOG_FILE, content_digest, library_files
from guidebot.content.library import Library, Rejection, load_library
from guidebot.content.materials import MaterialLibrary, parse_materials
from guidebot.errors import ConfigError

log = logging.getLogger(__name__)

# removed message ids → for each one still to be sent, what sends it (SopService.messages_in_use)
InUse = Callable[[Sequence[str]], Awaitable[dict[str, str]]]
IN_USE_RECHECK = timedelta(minutes=1)  # how often an edit refused for that is looked at again


@dataclass(frozen=True)
class ReloadOutcome:
    # unchanged | settling (changed since the last look: loaded if still so next time)
    # | replaced (at least one part) | rejected (invalid: the content in force stays)
    status: str
    tags_changed: bool = False
    # the parts replaced: "library" (with the chat content), "catalog", "materials"
    parts: frozenset[str] = frozenset()

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


@dataclass
class Candidate:
    """One look at the files, each part validated on its own (None: that part is invalid,
    its problems are in `problems`)."""

    digest: str
    problems: list[Problem] = field(default_factory=list)
    library: Library | None = None
    chat: ChatContent | None = None
    catalog: Catalog | None = None
    materials: MaterialLibrary | None = None


def _catalog_part(root: Path, problems: list[Problem]) -> Catalog | None:
    """catalog.toml checked with file:line (the keys chat answers from, then the loader's own
    rules)."""
    path = root / CATALOG_FILE
    before = len(problems)
    catalog_problems(path, problems)
    if len(problems) > before:
        return None
    try:
        return load_catalog(root)
    except ConfigError as exc:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        problems.append(Problem(path, line_of(text, exc.key), f"{exc.key}: {exc.problem}"))
        return None


def _candidate(root: Path, with_chat: bool, catalog: Catalog | None,
               materials: MaterialLibrary | None) -> Candidate:
    """The files' digest and each part: the catalog, the materials (materials/,
    sensitive_words.txt, material_texts.toml), and the library with (`with_chat`) its chat
    content, checked against the library's messages as `guidebot check` does. The materials
    (their skus) are checked against the catalog in force after this look, and the library
    and the chat content against the catalog and the materials in force after it: the new
    ones where valid, else `catalog` and `materials` (the ones in force) (file I/O: runs in a
    worker thread)."""
    found = Candidate(content_digest(root))
    if not library_files(root):  # a moved or half-copied folder must not disable every SOP
        found.problems.append(Problem(root, None, "no library files found (messages/, sops/, "
                                                  "drops/, tags.toml)"))
        return found
    found.catalog = _catalog_part(root, found.problems)
    material_problems: list[Problem] = []
    in_force = found.catalog or catalog
    loaded = parse_materials(root, material_problems,
                             skus=None if in_force is None else set(in_force.products))
    found.problems += material_problems
    found.materials = None if material_problems else loaded
    try:
        found.library = load_library(root, catalog=found.catalog or catalog or Catalog({}),
                                     materials=found.materials or materials or loaded)
        found.chat = load_chat_content(root, set(found.library.messages),
                                       catalog=False) if with_chat else None
    except ContentInvalid as exc:
        found.library = None
        found.problems += exc.problems
    return found


async def reload_library(library: Library, *, chat: ChatContent | None = None,
                         catalog: Catalog | None = None,
                         materials: MaterialLibrary | None = None,
                         settle: bool = True, in_use: InUse | None = None) -> ReloadOutcome:
    """One look at the files (and at the picture and video files they name, by content: one
    replaced under the same name is a change, checked again). A change is loaded once the
    files are the same on two looks in a row (`settle`: an editor or a deploy may be half
    way through writing them). Each part is validated on its own and a valid one replaces
    the content in force in place: the library with the `chat` content when given (replies/,
    faq/, chat/: validated with the library, swapped with it), the `catalog` and the
    `materials` when given. An invalid part is logged with file:line and stays as it was;
    the others still apply. The library (and the materials' skus) are checked against the
    catalog and materials in force after the look, so a file naming a sku only an invalid
    new catalog has is refused too, until the catalog is fixed. An edit
    that removes a message still to be sent (`in_use`) is refused the same way, and looked
    at again every IN_USE_RECHECK until nothing sends it. Call from one task at a time (the
    scheduler job does)."""
    digest = await asyncio.to_thread(content_digest, library.root)
    rejected = library.rejected
    if rejected is not None and digest == rejected.digest:
        if not rejected.in_use or datetime.now(UTC) - rejected.at < IN_USE_RECHECK:
            return ReloadOutcome("rejected")
    elif digest == library.digest:
        if rejected is not None:
            log.info("content_library is back to the version in force; edit problems cleared")
        library.rejected, library.settling = None, ""
        return ReloadOutcome("unchanged")
    if settle and digest != library.settling:
        library.settling = digest
        return ReloadOutcome("settling")
    found = await asyncio.to_thread(_candidate, library.root, chat is not None, catalog,
                                    materials)
    if settle and found.digest != digest:  # changed again while loading: wait for it to settle
        library.settling = found.digest
        return ReloadOutcome("settling")
    problems, in_use_problems = found.problems, False
    loaded = found.library
    if loaded is not None:
        removed = sorted(set(library.messages) - set(loaded.messages))
        busy = await in_use(removed) if removed and in_use is not None else {}
        if busy:
            loaded, in_use_problems = None, True
            problems = [*problems, *(Problem(
                library.messages[m].file, None, f"message {m!r} is removed but still to be "
                f"sent ({why}); keep the file until they are sent") for m, why in busy.items())]
    parts = set()
    tags_changed = False
    if loaded is not None:
        tags_changed = loaded.tag_groups != library.tag_groups
        library.replace_with(loaded)
        if chat is not None and found.chat is not None:  # with the library: no await between
            chat.replace_with(found.chat)
        parts.add("library")
    # the catalog and the materials only when they changed (an HQ material edited in the
    # console is not put back to its file's version by an edit of another file)
    if catalog is not None and found.catalog is not None and not catalog.same(found.catalog):
        catalog.replace_with(found.catalog)
        parts.add("catalog")
    if materials is not None and found.materials is not None and not materials.same(
            found.materials):
        materials.replace_with(found.materials)
        parts.add("materials")
    if parts:
        # the files in force now (a part refused below is listed against them): undoing the
        # edit is a change again, so what was applied is put back by the next look
        library.digest, library.settling = digest, ""
        log.info("content_library reloaded (%s): %s SOPs, %s drops, %s messages%s%s%s",
                 ", ".join(sorted(parts)), len(library.sops), len(library.drops),
                 len(library.messages),
                 "" if chat is None else f", {len(chat.replies)} keyword replies, "
                                         f"{len(chat.faqs)} FAQ entries",
                 "" if catalog is None else f", {len(catalog.products)} products",
                 "" if materials is None else f", {len(materials.materials)} materials, "
                                              f"{len(materials.words.words)} sensitive words")
    if problems:
        _reject(library, digest, problems, in_use=in_use_problems)
    if not parts:
        return ReloadOutcome("rejected")
    return ReloadOutcome("replaced", tags_changed=tags_changed, parts=frozenset(parts))


def _reject(library: Library, digest: str, problems: list[Problem], *,
            in_use: bool = False) -> None:
    library.rejected = Rejection(digest, tuple(problems), datetime.now(UTC), in_use)
    library.settling = ""
    for problem in problems:  # file:line and what is wrong; never the message texts
        log.error("content_library edit rejected: %s", _relative(library.root, problem))
    log.error("content_library: %s problem(s); the parts they are in stay as they were until "
              "they are fixed", len(problems))


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
