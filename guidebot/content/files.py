"""Which files make a content library, and one digest of all of them (to notice edits)."""

from __future__ import annotations

import hashlib
from pathlib import Path

FOLDERS = ("messages", "sops", "drops")
TAGS_FILE = "tags.toml"
STORES_FILE = "stores.toml"  # content/stores.py


def library_files(root: Path) -> list[Path]:
    """messages/*.toml, sops/*.toml, drops/*.toml, tags.toml and stores.toml, in a stable order."""
    found = [path for folder in FOLDERS for path in sorted((root / folder).glob("*.toml"))]
    tags = root / TAGS_FILE
    found = [*found, tags] if tags.exists() else found
    stores = root / STORES_FILE
    return [*found, stores] if stores.exists() else found


def content_digest(root: Path) -> str:
    """sha256 over every library file's relative path and bytes: any edit, addition, removal
    or rename changes it, whatever the file system's timestamp resolution."""
    digest = hashlib.sha256()
    for path in library_files(root):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed between listing and reading: part of an edit
            continue
        name = path.relative_to(root).as_posix().encode()
        digest.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:32]
