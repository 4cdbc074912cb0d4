"""`guidebot init`: a commented config.toml and an empty, valid content library for one tenant.

Nothing is overwritten: if any file it would write exists, it writes none and says which.
Secrets are never written, only the names of the environment variables that hold them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from guidebot.errors import ValidationFailed

TEMPLATES = Path(__file__).parent / "templates" / "init"
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Scaffold:
    folder: Path
    files: dict[Path, str]  # path → content
    folders: tuple[Path, ...]


def plan(folder: Path, *, tenant: str, corp_id: str = "", agent_id: int = 0) -> Scaffold:
    """What `init` writes in `folder` (nothing is written here)."""
    if not _TENANT_ID.fullmatch(tenant):
        raise ValidationFailed(f"--tenant {tenant!r}: must be 1-32 of a-z 0-9 _ - (lower case)")
    folder = folder.resolve()
    library = folder / "content_library"
    config = Template((TEMPLATES / "config.toml").read_text("utf-8")).substitute(
        tenant=tenant, env=re.sub(r"[^A-Z0-9]", "_", tenant.upper()),
        corp_id=corp_id.replace('"', ""), agent_id=int(agent_id),
        database_url=f"sqlite+aiosqlite:///{folder / 'guidebot.db'}")
    files = {
        folder / "config.toml": config,
        library / "tags.toml": (TEMPLATES / "tags.toml").read_text("utf-8"),
        library / "catalog.toml": (TEMPLATES / "catalog.toml").read_text("utf-8"),
        library / "profile_fields.toml":
            (TEMPLATES / "profile_fields.toml").read_text("utf-8"),
        library / "messages" / "welcome_default.toml":
            (TEMPLATES / "welcome_default.toml").read_text("utf-8"),
    }
    return Scaffold(folder, files, (library / "sops", library / "drops"))


def write(scaffold: Scaffold) -> list[Path]:
    """Create the files and folders; refuse (ValidationFailed) if any file already exists."""
    existing = [p for p in scaffold.files if p.exists()]
    if existing:
        names = ", ".join(str(p) for p in existing)
        raise ValidationFailed(f"not overwriting existing file(s): {names}")
    written = []
    for path, content in scaffold.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:  # "x": never replaces a file
            handle.write(content)
        written.append(path)
    for folder in scaffold.folders:
        folder.mkdir(parents=True, exist_ok=True)
    return written
