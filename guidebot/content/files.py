"""Which files make a content library, and one digest of all of them (to notice edits)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

FOLDERS = ("messages", "sops", "drops")
TAGS_FILE = "tags.toml"
STORES_FILE = "stores.toml"  # content/stores.py
GROUP_WELCOME_FILE = "group_welcome.toml"  # content/group_welcome.py
AUTO_TAGS_FILE = "auto_tags.toml"  # content/auto_tags.py
CHAT_FOLDERS = ("replies", "faq")  # content/chat.py
CHAT_DIR = "chat"
CHAT_FILES = ("words.toml", "commands.toml", "texts.toml", "opt_out.toml", "watch_words.toml")
CATALOG_FILE = "catalog.toml"  # content/catalog.py
MATERIALS_FOLDER = "materials"  # content/materials.py, with the two files below
MATERIAL_FILES = ("sensitive_words.txt", "material_texts.toml")


def library_files(root: Path) -> list[Path]:
    """messages/*.toml, sops/*.toml, drops/*.toml, tags.toml, stores.toml,
    group_welcome.toml and auto_tags.toml, in a stable order."""
    found = [path for folder in FOLDERS for path in sorted((root / folder).glob("*.toml"))]
    return [*found, *(root / name for name in (TAGS_FILE, STORES_FILE, GROUP_WELCOME_FILE,
                                                  AUTO_TAGS_FILE)
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
    """sha256 over every library, chat, catalog and material file's relative path and bytes:
    any edit, addition, removal or rename changes it, whatever the file system's timestamp
    resolution."""
    digest = hashlib.sha256()
    for path in [*library_files(root), *chat_files(root), *catalog_files(root)]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed between listing and reading: part of an edit
            continue
        name = path.relative_to(root).as_posix().encode()
        digest.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:32]


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
