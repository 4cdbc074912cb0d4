"""Which files make a content library, and one digest of all of them (to notice edits): the
library's TOML and text files, and the picture and video files its messages and materials
name."""

from __future__ import annotations

import hashlib
import os
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

FOLDERS = ("messages", "sops", "drops")
TAGS_FILE = "tags.toml"
STORES_FILE = "stores.toml"  # content/stores.py
GROUP_WELCOME_FILE = "group_welcome.toml"  # content/group_welcome.py
AUTO_TAGS_FILE = "auto_tags.toml"  # content/auto_tags.py
PROFILE_FIELDS_FILE = "profile_fields.toml"  # content/profile_fields.py
CHAT_FOLDERS = ("replies", "faq")  # content/chat.py
CHAT_DIR = "chat"
CHAT_FILES = ("words.toml", "commands.toml", "texts.toml", "opt_out.toml", "watch_words.toml")
CATALOG_FILE = "catalog.toml"  # content/catalog.py
MATERIALS_FOLDER = "materials"  # content/materials.py, with the two files below
MATERIAL_FILES = ("sensitive_words.txt", "material_texts.toml")
# Where a file names a picture or video file of the library: an attachment's `file` and a
# card's `pic_file` (messages/), a material's `pictures` and `video` (materials/).
NAMING_FOLDERS = ("messages", MATERIALS_FOLDER)
MEDIA_BYTES = 10 * 1024 * 1024  # a larger file is refused when it loads: its mark stands for it

Mark = tuple[int, int, int, int]
# what this process knows of the files it hashed: path → (mark, sha256, whether the mark can
# be trusted). A file's mark is its size, modification time, change time and inode:
# replacing it under the same name changes at least the change time (which no copy tool sets
# back) or the inode (a rename), so a new picture is hashed again even when it has the old
# one's size and modification time. A file hashed within RACY_NS of its last change may
# change again within the same timestamp tick (a file system keeping whole seconds), so its
# mark is trusted only once it was hashed later than that; until then it is hashed each time.
_hashed: dict[Path, tuple[Mark, str, bool]] = {}
RACY_NS = 3_000_000_000  # more than the coarsest timestamps (2 s) and clock ticks
# path of a messages/ or materials/ file → (sha256 of its bytes, the files it names)
_named: dict[Path, tuple[bytes, tuple[str, ...]]] = {}


def library_files(root: Path) -> list[Path]:
    """messages/*.toml, sops/*.toml, drops/*.toml, tags.toml, stores.toml,
    group_welcome.toml, auto_tags.toml and profile_fields.toml, in a stable order."""
    found = [path for folder in FOLDERS for path in sorted((root / folder).glob("*.toml"))]
    return [*found, *(root / name for name in (TAGS_FILE, STORES_FILE, GROUP_WELCOME_FILE,
                                                  AUTO_TAGS_FILE, PROFILE_FIELDS_FILE)
                      if (root / name).exists())]


def chat_files(root: Path) -> list[Path]:
    """The chat content's files (content/chat.py): replies/*.toml, faq/*.toml and the files
    of chat/ the library has (the shipped ones stand in for the others), in a stable order."""
    found = [path for folder in CHAT_FOLDERS for path in sorted((root / folder).glob("*.toml"))]
    return [*found, *(root / CHAT_DIR / name for name in CHAT_FILES
                      if (root / CHAT_DIR / name).exists())]


def catalog_files(root: Path) -> list[Path]:
    """catalog.toml, materials/*.toml, sensitive_words.txt and material_texts.toml, those the
    library has, in a stable order."""
    found = sorted((root / MATERIALS_FOLDER).glob("*.toml"))
    return [*(root / name for name in (CATALOG_FILE,) if (root / name).exists()), *found,
            *(root / name for name in MATERIAL_FILES if (root / name).exists())]


def content_digest(root: Path) -> str:
    """sha256 over every library, chat, catalog and material file's relative path and bytes,
    and over the content of every picture and video file a message or material names: any
    edit, addition, removal or rename changes it, whatever the file system's timestamp
    resolution, and so does replacing a named picture under the same name. A named file is
    hashed again only when its mark changed (`file_digest`)."""
    digest = hashlib.sha256()
    media: set[str] = set()
    for path in [*library_files(root), *chat_files(root), *catalog_files(root)]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed between listing and reading: part of an edit
            continue
        name = path.relative_to(root).as_posix().encode()
        digest.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big"))
        digest.update(data)
        if path.parent.parent == root and path.parent.name in NAMING_FOLDERS:
            media.update(_files_named(path, data))
    resolved = root.resolve()
    for named in sorted(media):
        file = (resolved / named).resolve()
        if not file.is_relative_to(resolved):  # refused when the files load; never read
            continue
        try:
            held = file_digest(file).encode()
        except OSError:  # missing (refused when the files load) or unreadable
            held = b"-"
        encoded = named.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded + held)
    return digest.hexdigest()[:32]


def named_files(data: dict[str, Any]) -> list[str]:
    """The picture and video files a message's or material's TOML names (as written)."""
    names: list[Any] = [data.get("video")]
    pictures = data.get("pictures")
    if isinstance(pictures, list):
        names += pictures
    attachments = data.get("attachments")
    for item in attachments if isinstance(attachments, list) else ():
        if isinstance(item, dict):
            names += [item.get("file"), item.get("pic_file")]
    return [n for n in names if isinstance(n, str) and n]


def _files_named(path: Path, data: bytes) -> tuple[str, ...]:
    """named_files of a file's bytes, parsed again only when they changed (broken TOML
    names none: it is refused when the files load)."""
    sha = hashlib.sha256(data).digest()
    known = _named.get(path)
    if known is not None and known[0] == sha:
        return known[1]
    try:
        names = tuple(named_files(tomllib.loads(data.decode("utf-8"))))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        names = ()
    _named[path] = (sha, names)
    return names


def _mark(stat: os.stat_result) -> Mark:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def cached_file_digest(path: Path) -> str | None:
    """The file's sha256 when this process hashed it well after its last change and its mark
    is unchanged since (one stat, no read), else None. Raises OSError when the file cannot
    be seen."""
    known = _hashed.get(path)
    return known[1] if known is not None and known[2] and known[0] == _mark(
        path.stat()) else None


def file_digest(path: Path) -> str:
    """The file's sha256, read again unless its mark is trusted and unchanged (file I/O: call
    from a worker thread). A file over MEDIA_BYTES (refused when the files load) is not read:
    its mark stands for its content."""
    stat = path.stat()
    mark = _mark(stat)
    known = _hashed.get(path)
    if known is not None and known[2] and known[0] == mark:
        return known[1]
    now = time.time_ns()
    if stat.st_size > MEDIA_BYTES:
        value = hashlib.sha256(repr(mark).encode()).hexdigest()
    else:
        value = hashlib.sha256(path.read_bytes()).hexdigest()
    _hashed[path] = (mark, value, now - max(stat.st_mtime_ns, stat.st_ctime_ns) > RACY_NS)
    return value


def library_file_problem(root: Path, name: object, sizes: tuple[int, int], kind: str,
                         is_kind: Callable[[bytes], bool]) -> str | None:
    """What is wrong with a file a library file names (None: nothing): it must be a path
    inside the library `root`, exist, have a size within `sizes` (bytes) and start like a
    file of `kind` (`is_kind` reads its first 8 bytes). The answer follows the name, e.g.
    "'a.png': no such file"."""
    resolved = root.resolve()
    file = (resolved / name).resolve() if isinstance(name, str) and name else None
    if file is None or not file.is_relative_to(resolved):
        return f"{name!r} must be a path inside content_library"
    if not file.is_file():
        return f"{name!r}: no such file"
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(8)
    if not sizes[0] <= size <= sizes[1]:
        return f"{name!r} has {size} bytes; {_size(sizes[0])} to {_size(sizes[1])} are allowed"
    if not is_kind(head):
        return f"{name!r} is not a {kind}"
    return None


def _size(count: int) -> str:
    mib = 1024 * 1024
    return f"{count // mib} MB" if count >= mib and not count % mib else f"{count} B"
