"""Loads messages/, sops/, drops/, tags.toml and the optional stores.toml, group_welcome.toml,
auto_tags.toml and profile_fields.toml from a content library, reporting every problem."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guidebot.content.auto_tags import AutoTags, catalog_names, parse_auto_tags
from guidebot.content.errors import (
    ContentInvalid,
    Problem,
    line_of,
    toml_error_line,
    value_line,
)
from guidebot.content.files import (
    AUTO_TAGS_FILE,
    GROUP_WELCOME_FILE,
    PROFILE_FIELDS_FILE,
    content_digest,
    library_file_problem,
)
from guidebot.content.group_welcome import GroupWelcome, parse_group_welcome
from guidebot.content.profile_fields import ProfileField, parse_profile_fields
from guidebot.content.render import TemplateSyntaxError, unknown_placeholders
from guidebot.content.sop_spec import MATERIAL_MESSAGE, DropSpec, SopSpec
from guidebot.content.sop_validate import parse_drop, parse_sop
from guidebot.content.stores import STORES_FILE, StoreMap, parse_stores
from guidebot.content.timed_text import TimedText, parse_hours, pick

if TYPE_CHECKING:
    from guidebot.content.catalog import Catalog
    from guidebot.content.materials import MaterialLibrary

MESSAGE_KEYS = {"text", "attachments", "title", "sidebar", "hours"}
ATTACHMENT_FIELDS: dict[str, set[str]] = {
    "image": {"media_id", "pic_url", "file"},
    "link": {"title", "url", "picurl", "desc"},
    "miniprogram": {"title", "pic_media_id", "pic_file", "appid", "page", "sku"},
}
# A picture file under content_library that guidebot uploads (media/upload) in place of a
# media id: the attachment key naming the file, and the WeCom key it becomes.
PICTURE_KEYS = {"image": ("file", "media_id"), "miniprogram": ("pic_file", "pic_media_id")}
PICTURE_BYTES = (6, 10 * 1024 * 1024)  # FACTS §3.9: an image is > 5 B and ≤ 10 MB
PICTURE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPG or PNG
ATTACHMENT_REQUIRED: dict[str, set[str]] = {
    "image": set(), "link": {"title", "url"}, "miniprogram": {"title", "page"},
}
MAX_ATTACHMENTS = 9  # WeCom's limit for welcome messages and mass sends
MOMENT_ATTACHMENTS = {"image", "video", "link"}  # what add_moment_task takes (FACTS §3.8)


@dataclass(frozen=True)
class Message:
    id: str
    text: str
    attachments: tuple[dict[str, Any], ...]
    file: Path
    sidebar: bool = True  # offered to guides in the chat sidebar's suggested messages
    hours: tuple[TimedText, ...] = ()  # 分时段欢迎语: texts for times of day (welcomes)

    def at(self, local: datetime) -> Message:
        """The message as a welcome sends it at `local` (the tenant's time zone): the text
        of its first `[[hours]]` table holding that moment, else its own."""
        timed = pick(self.hours, local)
        return self if timed is None else replace(self, text=timed.text)


@dataclass(frozen=True)
class TagGroup:
    name: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Rejection:
    """An edit that did not validate: the library stays as it was (content/reload.py)."""

    digest: str
    problems: tuple[Problem, ...]
    at: datetime
    # valid files that remove messages still to be sent: looked at again (they may be sent
    # by then), not refused for good like invalid files
    in_use: bool = False


@dataclass
class Library:
    """The content in force. One object for the process: services keep a reference, and a
    reload swaps its contents in place (`replace_with`), so they all see the new content."""

    root: Path
    messages: dict[str, Message]
    tag_groups: tuple[TagGroup, ...]
    sops: dict[str, SopSpec] = field(default_factory=dict)
    drops: dict[str, DropSpec] = field(default_factory=dict)
    digest: str = ""  # of the files this content was loaded from (content/files.py)
    loaded_at: datetime | None = None
    rejected: Rejection | None = None  # the newest edit that failed validation, if any
    settling: str = ""  # digest of files seen changed once, loaded if still so next time
    stores: StoreMap = field(default_factory=StoreMap)  # stores.toml (contacts/directory.py)
    group_welcome: tuple[GroupWelcome, ...] = ()  # group_welcome.toml (contacts/group_welcome.py)
    auto_tags: AutoTags = field(default_factory=AutoTags)  # auto_tags.toml (contacts/auto_tags.py)
    # profile_fields.toml (contacts/profile_fields.py), in the file's order
    profile_fields: tuple[ProfileField, ...] = ()

    def replace_with(self, other: Library) -> None:
        """Take `other`'s content. No await happens here, so no coroutine sees half of it."""
        self.messages, self.tag_groups = other.messages, other.tag_groups
        self.sops, self.drops = other.sops, other.drops
        self.digest, self.loaded_at = other.digest, other.loaded_at
        self.rejected, self.settling = None, ""
        self.stores = other.stores
        self.group_welcome = other.group_welcome
        self.auto_tags = other.auto_tags
        self.profile_fields = other.profile_fields


def _read(path: Path, problems: list[Problem]) -> tuple[dict[str, Any], str] | None:
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        problems.append(Problem(path, toml_error_line(exc), f"not valid TOML: {exc}"))
        return None


def _message(path: Path, problems: list[Problem]) -> Message | None:
    loaded = _read(path, problems)
    if loaded is None:
        return None
    data, text = loaded
    before = len(problems)
    for key in data:
        if key not in MESSAGE_KEYS:
            problems.append(Problem(path, line_of(text, key), f"unknown key {key!r}"))
    body = data.get("text", "")
    if not isinstance(body, str):
        problems.append(Problem(path, line_of(text, "text"), "text must be a string"))
        body = ""
    try:
        for name in unknown_placeholders(body):
            problems.append(Problem(path, line_of(text, "text"), f"unknown placeholder {name!r}"))
    except TemplateSyntaxError as exc:
        problems.append(Problem(path, line_of(text, "text"), f"template error: {exc.message}"))
    attachments = _attachments(path, text, data.get("attachments", []), problems)
    for item in attachments:
        _picture(path, text, item, problems)
    if not body and not attachments:
        problems.append(Problem(path, None, "a message needs text or attachments"))
    sidebar = data.get("sidebar", True)
    if not isinstance(sidebar, bool):
        problems.append(Problem(path, line_of(text, "sidebar"), "sidebar must be true or false"))
    hours = parse_hours(path, text, data.get("hours", []), problems)
    if len(problems) > before:
        return None
    return Message(path.stem, body, tuple(attachments), path, sidebar=bool(sidebar),
                   hours=tuple(hours))


def _attachments(path: Path, text: str, raw: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    line = line_of(text, "attachments")
    if not isinstance(raw, list):
        problems.append(Problem(path, line, "attachments must be an array of tables"))
        return []
    if len(raw) > MAX_ATTACHMENTS:
        problems.append(Problem(path, line, f"at most {MAX_ATTACHMENTS} attachments"))
    out = []
    for item in raw:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in ATTACHMENT_FIELDS:
            problems.append(Problem(path, line, "attachment type must be one of "
                                    + ", ".join(sorted(ATTACHMENT_FIELDS))))
            continue
        fields = {k: v for k, v in item.items() if k != "type"}
        unknown = set(fields) - ATTACHMENT_FIELDS[kind]
        missing = ATTACHMENT_REQUIRED[kind] - set(fields)
        if kind == "image" and not fields:
            missing = {"media_id or pic_url"}
        for name in sorted(unknown):
            problems.append(Problem(path, line, f"{kind} attachment: unknown key {name!r}"))
        for name in sorted(missing):
            problems.append(Problem(path, line, f"{kind} attachment: {name} is required"))
        out.append({"type": kind, **fields})
    return out


def _picture(path: Path, text: str, item: dict[str, Any], problems: list[Problem]) -> None:
    """A picture file named by an attachment: inside content_library, a JPG or PNG of the size
    media/upload takes, and not given beside the media id it stands for."""
    if item["type"] not in PICTURE_KEYS:
        return
    key, wecom_key = PICTURE_KEYS[item["type"]]
    if key not in item:
        return
    name, line = item[key], line_of(text, key)
    kind = item["type"]
    if wecom_key in item:
        problems.append(Problem(path, line, f"{kind} attachment: {key} and {wecom_key} "
                                "exclude each other"))
        return
    problem = library_file_problem(path.parent.parent, name, PICTURE_BYTES, "JPG or PNG",
                                   lambda head: head.startswith(PICTURE_MAGIC))
    if problem is not None:
        problems.append(Problem(path, line, f"{kind} attachment: {key} {problem}"))


def _tag_groups(path: Path, problems: list[Problem]) -> tuple[TagGroup, ...]:
    if not path.exists():
        return ()
    loaded = _read(path, problems)
    if loaded is None:
        return ()
    data, text = loaded
    groups = []
    for raw in data.get("groups", []):
        name, tags = raw.get("name"), raw.get("tags", [])
        if not isinstance(name, str) or not name or len(name) > 30:
            problems.append(Problem(path, line_of(text, "name"), "group name: 1-30 characters"))
            continue
        if not all(isinstance(t, str) and 0 < len(t) <= 30 for t in tags):
            problems.append(Problem(path, line_of(text, "tags"), "tag names: 1-30 characters"))
            continue
        groups.append(TagGroup(name, tuple(tags)))
    return tuple(groups)


def load_library(root: Path, *, catalog: Catalog | None = None,
                 materials: MaterialLibrary | None = None) -> Library:
    """Load and validate; raises ContentInvalid listing every problem found. Material
    messages and automatic tag rules are checked against `catalog` and `materials` when
    given (a reload: the ones in force after it, content/reload.py), else against
    catalog.toml and materials/ as they are on disk (their problems are then the library's)."""
    digest = content_digest(root)
    problems: list[Problem] = []
    messages = {}
    for path in sorted((root / "messages").glob("*.toml")):
        message = _message(path, problems)
        if message is not None:
            messages[message.id] = message
    skus = set(catalog.products) if catalog is not None else catalog_names(root)[0]
    for message in messages.values():
        _card_skus(message, skus, problems)
    groups = _tag_groups(root / "tags.toml", problems)
    known = {path.stem for path in (root / "messages").glob("*.toml")}
    for message in _material_messages(root, problems, catalog, materials):
        messages[message.id] = message
        known.add(message.id)
    sops = _specs(root / "sops", known, problems, parse_sop)
    drops = _specs(root / "drops", known, problems, parse_drop)
    stores = _stores(root / STORES_FILE, problems)
    group_welcome = _group_welcome(root / GROUP_WELCOME_FILE, messages, problems)
    auto_tags = _auto_tags(root, groups, problems, catalog)
    profile_fields = _profile_fields(root / PROFILE_FIELDS_FILE, problems)
    _moment_fit(sops, drops, messages, problems)
    if problems:
        raise ContentInvalid(problems)
    return Library(root, messages, groups, sops, drops, digest=digest,
                   loaded_at=datetime.now(UTC), stores=stores, group_welcome=group_welcome,
                   auto_tags=auto_tags, profile_fields=profile_fields)


def _card_skus(message: Message, skus: set[str], problems: list[Problem]) -> None:
    """A mini-program card's `sku` must be a product of catalog.toml (`skus`): the card is
    tracked, attributed and tagged by it. Problems at the line naming the sku."""
    unknown = [str(a["sku"]) for a in message.attachments
               if a["type"] == "miniprogram" and "sku" in a and str(a["sku"]) not in skus]
    if not unknown:
        return
    text = message.file.read_text(encoding="utf-8")
    for sku in unknown:
        problems.append(Problem(message.file, value_line(text, "sku", sku),
                                f"miniprogram attachment: sku {sku!r} is not in catalog.toml"))


def _moment_fit(sops: dict[str, SopSpec], drops: dict[str, DropSpec],
                messages: dict[str, Message], problems: list[Problem]) -> None:
    """A moment carries pictures, a video or a link (FACTS §3.8): a moment step or drop whose
    message or material has another attachment (a mini-program card) is refused here rather
    than sent without it."""
    sends = [(spec.file, step.message) for spec in sops.values() for step in spec.steps
             if step.channel == "moment"]
    sends += [(drop.file, drop.message) for drop in drops.values() if drop.channel == "moment"]
    for path, message_id in sends:
        message = messages.get(message_id)
        unfit = sorted({a["type"] for a in message.attachments} - MOMENT_ATTACHMENTS) \
            if message is not None else []
        if unfit:
            named = message_id.removeprefix(MATERIAL_MESSAGE)
            key = "material" if message_id.startswith(MATERIAL_MESSAGE) else "message"
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            line = next((n for n, raw in enumerate(text.splitlines(), start=1)
                         if raw.strip().startswith(key) and f'"{named}"' in raw), None)
            problems.append(Problem(path, line, f"{key} {named!r}: a moment cannot carry "
                                    f"{', '.join(unfit)} attachments (only image, video or "
                                    "link)"))


def _material_messages(root: Path, problems: list[Problem], catalog: Catalog | None,
                       materials: MaterialLibrary | None) -> list[Message]:
    """HQ's materials (content_library/materials/) as the messages "material:<id>" that SOP
    steps and drops send with `material = "<id>"`."""
    # imported here: materials.py uses this module's picture rules
    from guidebot.content.materials import catalog_cards, message_attachments, parse_materials

    library = parse_materials(root, problems, skus=None if catalog is None else set(
        catalog.products)) if materials is None else materials
    if not library.materials:
        return []
    cards = catalog_cards(root) if catalog is None else catalog.cards()
    return [Message(MATERIAL_MESSAGE + m.id, m.content.text,
                    tuple(message_attachments(m.content, cards)), m.file)
            for m in library.materials.values()]


def _stores(path: Path, problems: list[Problem]) -> StoreMap:
    if not path.exists():
        return StoreMap()
    loaded = _read(path, problems)
    return StoreMap() if loaded is None else parse_stores(path, loaded[0], loaded[1], problems)


def _group_welcome(path: Path, messages: dict[str, Message],
                   problems: list[Problem]) -> tuple[GroupWelcome, ...]:
    if not path.exists():
        return ()
    loaded = _read(path, problems)
    return () if loaded is None else parse_group_welcome(path, loaded[0], loaded[1], messages,
                                                         problems)


def _profile_fields(path: Path, problems: list[Problem]) -> tuple[ProfileField, ...]:
    if not path.exists():
        return ()
    loaded = _read(path, problems)
    return () if loaded is None else parse_profile_fields(path, loaded[0], loaded[1], problems)


def _auto_tags(root: Path, groups: tuple[TagGroup, ...], problems: list[Problem],
               catalog: Catalog | None) -> AutoTags:
    path = root / AUTO_TAGS_FILE
    if not path.exists():
        return AutoTags()
    loaded = _read(path, problems)
    if loaded is None:
        return AutoTags()
    declared = {tag for group in groups for tag in group.tags}
    names = catalog_names(root) if catalog is None else catalog.names()
    return parse_auto_tags(path, loaded[0], loaded[1], declared, names, problems)


def _specs(folder: Path, messages: set[str], problems: list[Problem],
           parse: Any) -> dict[str, Any]:
    """sops/*.toml or drops/*.toml, each checked against the known message ids."""
    found = {}
    for path in sorted(folder.glob("*.toml")):
        loaded = _read(path, problems)
        if loaded is None:
            continue
        spec = parse(path, loaded[0], loaded[1], messages, problems)
        if spec is not None:
            found[spec.id] = spec
    return found
