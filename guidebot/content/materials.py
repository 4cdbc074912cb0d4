"""content_library/materials/*.toml (HQ's materials, one per file, its id the file name) and
content_library/sensitive_words.txt, validated with file:line like the other library files."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guidebot.content.errors import ContentInvalid, Problem, line_of, value_line
from guidebot.content.files import MATERIAL_FILES, MATERIALS_FOLDER, library_file_problem
from guidebot.content.library import PICTURE_BYTES, PICTURE_MAGIC
from guidebot.content.sop_spec import MATERIAL_ID, RESERVED_MATERIAL_IDS
from guidebot.errors import ValidationFailed
from guidebot.settings import GRADES

FOLDER = MATERIALS_FOLDER
WORDS_FILE, TEXTS_FILE = MATERIAL_FILES  # a library's own texts, else the shipped ones:
SHIPPED_TEXTS = Path(__file__).resolve().parents[1] / "templates" / "materials" / "texts.toml"
TEXT_KEYS = {  # each text and the placeholders it may use
    "receipt": {"title", "pictures"}, "receipt_refused": {"count"},
    "receipt_flagged": {"words"}, "contribute_empty": set(),
    "approved": {"title", "grade", "points"}, "rejected": {"title", "reason"},
    "search_none": {"keyword"}, "search_header": {"count"},
    "search_line": {"grade", "title", "id", "summary"}}
COMMANDS = ("contribute", "search")
MAX_TEXT = 2000  # characters
MAX_PICTURES = 9
MAX_WORD = 32
DEFAULT_PAGE = "pages/index/index.html"  # the catalog's default page when it names none
CARD_TITLE = 20  # characters of a product name on a card (WeCom allows 64 bytes)
ID = MATERIAL_ID
RESERVED = RESERVED_MATERIAL_IDS  # API paths under /materials/
KEYS = {"title", "text", "pictures", "video", "link", "skus", "categories", "occasions",
        "grade"}
LINK_KEYS = {"title", "url", "desc", "picurl"}
VIDEO_BYTES = (6, 10 * 1024 * 1024)  # media/upload's video limit (MP4 ≤ 10 MB)


def is_mp4(head: bytes) -> bool:
    """An MP4 file's first bytes: a box size, then "ftyp"."""
    return head[4:8] == b"ftyp"


@dataclass(frozen=True)
class Content:
    """What a material says and shows (one version of it)."""

    title: str = ""
    text: str = ""
    pictures: tuple[str, ...] = ()  # stored picture names or content_library paths
    video: str = ""
    link: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    occasions: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "text": self.text, "pictures": list(self.pictures),
                "video": self.video, "link": dict(self.link), "skus": list(self.skus),
                "categories": list(self.categories), "occasions": list(self.occasions)}


@dataclass(frozen=True)
class LibraryMaterial:
    id: str
    content: Content
    grade: str
    file: Path


@dataclass(frozen=True)
class SensitiveWords:
    words: tuple[str, ...] = ()

    def found(self, text: str) -> list[str]:
        """The listed words the text contains (case-insensitive), in list order."""
        folded = text.casefold()
        return [w for w in self.words if w.casefold() in folded]


@dataclass(frozen=True)
class MaterialTexts:
    texts: dict[str, str]
    commands: dict[str, tuple[str, ...]]

    def text(self, name: str, **values: Any) -> str:
        return self.texts[name].format(**values)

    def command(self, message: str) -> tuple[str, str] | None:
        """(command, argument) when the message starts with a command word, else None."""
        stripped = message.strip()
        for name, words in self.commands.items():
            for word in sorted(words, key=len, reverse=True):
                if stripped.startswith(word):
                    return name, stripped[len(word):].strip()
        return None


@dataclass(eq=False)
class MaterialLibrary:
    """HQ's materials, the sensitive words and the material texts in force: one object for
    the process (MaterialService keeps it); a reload swaps its contents in place."""

    materials: dict[str, LibraryMaterial]
    words: SensitiveWords
    texts: MaterialTexts
    generation: int = field(default=0, init=False)  # replacements so far

    def replace_with(self, other: MaterialLibrary) -> None:
        """Take `other`'s content. No await happens here, so no coroutine sees half of it."""
        self.materials, self.words, self.texts = other.materials, other.words, other.texts
        self.generation += 1

    def same(self, other: MaterialLibrary) -> bool:
        return (self.materials, self.words, self.texts) == (
            other.materials, other.words, other.texts)


def content_problems(content: Content) -> list[ValidationFailed]:
    """What makes content unfit, whoever made it (files, the API, the chat, the console)."""
    problems = []
    if len(content.text) > MAX_TEXT:
        problems.append(ValidationFailed(
            f"text: at most {MAX_TEXT} characters (has {len(content.text)})",
            code="material.text_long", limit=MAX_TEXT, length=len(content.text)))
    if len(content.pictures) > MAX_PICTURES:
        problems.append(ValidationFailed(f"pictures: at most {MAX_PICTURES}",
                                         code="material.pictures", limit=MAX_PICTURES))
    shown = [bool(content.pictures), bool(content.video), bool(content.link)]
    if sum(shown) > 1:
        problems.append(ValidationFailed("pictures, video and link exclude each other",
                                         code="material.one_kind"))
    if not content.text and not any(shown):
        problems.append(ValidationFailed("a material needs text, pictures, a video or a link",
                                         code="material.empty"))
    link = dict(content.link)
    if link and not (link.get("title") and str(link.get("url", "")).startswith(
            ("http://", "https://"))):
        problems.append(ValidationFailed("link: needs a title and an http(s) url",
                                         code="material.link"))
    return problems


def _strings(path: Path, text: str, data: dict[str, Any], key: str,
             problems: list[Problem]) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 64
                                              for v in value):
        problems.append(Problem(path, line_of(text, key),
                                f"{key} must be a list of strings of 1-64 characters"))
        return ()
    return tuple(value)


def _file(path: Path, text: str, key: str, name: Any, sizes: tuple[int, int], kind: str,
          check: Callable[[bytes], bool], problems: list[Problem]) -> None:
    problem = library_file_problem(path.parent.parent, name, sizes, kind, check)
    if problem is not None:
        problems.append(Problem(path, line_of(text, key), f"{key}: {problem}"))


def _material(path: Path, problems: list[Problem], skus: set[str]) -> LibraryMaterial | None:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        problems.append(Problem(path, int(found.group(1)) if found else None,
                                f"not valid TOML: {exc}"))
        return None
    before = len(problems)
    if not ID.match(path.stem) or path.stem in RESERVED:
        problems.append(Problem(path, None, "file name: 1-48 of a-z 0-9 _ - (the material id), "
                                "not search, contributors or review"))
    for key in sorted(set(data) - KEYS):
        problems.append(Problem(path, line_of(text, key), f"unknown key {key!r}"))
    title, body = data.get("title", ""), data.get("text", "")
    if not isinstance(title, str) or len(title) > 64:
        problems.append(Problem(path, line_of(text, "title"), "title: at most 64 characters"))
        title = ""
    if not isinstance(body, str):
        problems.append(Problem(path, line_of(text, "text"), "text must be a string"))
        body = ""
    pictures = _strings(path, text, data, "pictures", problems)
    for name in pictures:
        _file(path, text, "pictures", name, PICTURE_BYTES, "JPG or PNG",
              lambda head: head.startswith(PICTURE_MAGIC), problems)
    video = data.get("video", "")
    if video:
        _file(path, text, "video", video, VIDEO_BYTES, "MP4", is_mp4, problems)
    link = data.get("link", {})
    if not isinstance(link, dict) or set(link) - LINK_KEYS or not all(
            isinstance(v, str) for v in link.values()):
        problems.append(Problem(path, line_of(text, "link"),
                                "link: a table of title, url, desc and picurl strings"))
        link = {}
    grade = data.get("grade", "B")
    if grade not in GRADES:
        problems.append(Problem(path, line_of(text, "grade"), "grade: one of S, A, B, C"))
    content = Content(title=title, text=body, pictures=pictures, video=str(video or ""),
                      link=tuple(sorted(link.items())),
                      skus=_strings(path, text, data, "skus", problems),
                      categories=_strings(path, text, data, "categories", problems),
                      occasions=_strings(path, text, data, "occasions", problems))
    for sku in content.skus:
        if sku not in skus:  # its card shows the catalog product
            problems.append(Problem(path, value_line(text, "skus", sku),
                                    f"skus: {sku!r} is not in catalog.toml"))
    if "{{" in body or "{%" in body:
        problems.append(Problem(path, line_of(text, "text"), "text: may not contain {{ or {% "
                                "(SOP steps and drops send it as a message template)"))
    for refused in content_problems(content):
        problem = str(refused)
        name = problem.split(":")[0] if ":" in problem else ""
        problems.append(Problem(path, line_of(text, name) if name else None, problem))
    if len(problems) > before:
        return None
    return LibraryMaterial(path.stem, content, str(grade), path)


def _words(path: Path, problems: list[Problem]) -> SensitiveWords:
    if not path.exists():
        return SensitiveWords()
    words: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        word = raw.strip()
        if not word or word.startswith("#"):
            continue
        if len(word) > MAX_WORD:
            problems.append(Problem(path, number, f"a word of at most {MAX_WORD} characters"))
        elif word.casefold() in (w.casefold() for w in words):
            problems.append(Problem(path, number, f"{word!r} is listed twice"))
        else:
            words.append(word)
    return SensitiveWords(tuple(words))


def load_materials(root: Path) -> MaterialLibrary:
    """Load and validate; raises ContentInvalid listing every problem found."""
    problems: list[Problem] = []
    library = parse_materials(root, problems)
    if problems:
        raise ContentInvalid(problems)
    return library


def parse_materials(root: Path, problems: list[Problem], *,
                    skus: set[str] | None = None) -> MaterialLibrary:
    """Every problem appended to `problems` (what is valid is returned). A material's skus
    must be products of the catalog: `skus` (a reload: the catalog in force after it), else
    catalog.toml as it is on disk."""
    known = set(catalog_cards(root)) if skus is None else skus
    found = {}
    for path in sorted((root / FOLDER).glob("*.toml")):
        material = _material(path, problems, known)
        if material is not None:
            found[material.id] = material
    words = _words(root / WORDS_FILE, problems)
    own = root / TEXTS_FILE
    texts = _texts(own if own.exists() else SHIPPED_TEXTS, problems)
    return MaterialLibrary(found, words, texts)


def catalog_cards(root: Path) -> dict[str, tuple[str, str]]:
    """sku → (name, page) from catalog.toml, for materials' cards (the catalog itself is
    validated by the commerce catalog loader; an unreadable one gives no cards here)."""
    try:
        data = tomllib.loads((root / "catalog.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    products = data.get("products", [])
    default = str(data.get("default_page") or DEFAULT_PAGE)
    return {str(p["sku"]): (str(p.get("name", "")), str(p.get("page") or default))
            for p in products if isinstance(p, dict) and p.get("sku")}


def message_attachments(content: Content, cards: dict[str, tuple[str, str]]
                        ) -> list[dict[str, Any]]:
    """A library material as message attachments: its pictures or its video (content_library
    files, uploaded when sent), its link, and a mini-program card for its first sku in `cards`
    (sku → (title, page)), with the first picture as the card's picture (WeCom requires one:
    a material without pictures sends no card)."""
    items: list[dict[str, Any]] = [{"type": "image", "file": p} for p in content.pictures]
    if content.video:  # checked when the file loads (MP4, ≤ 10 MB, inside the library)
        items.append({"type": "video", "file": content.video})
    if content.link:
        items.append({"type": "link", **dict(content.link)})
    sku = next((s for s in content.skus if s in cards), None)
    if sku is not None and content.pictures and len(items) < MAX_PICTURES:
        title, page = cards[sku]
        items.append({"type": "miniprogram", "title": title[:CARD_TITLE], "page": page,
                      "sku": sku, "pic_file": content.pictures[0]})
    return items


def _texts(path: Path, problems: list[Problem]) -> MaterialTexts:
    empty = MaterialTexts({}, {})
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(Problem(path, None, f"not valid TOML: {exc}"))
        return empty
    texts, commands = data.get("texts", {}), data.get("commands", {})
    for name, allowed in TEXT_KEYS.items():
        value = texts.get(name) if isinstance(texts, dict) else None
        if not isinstance(value, str) or not value:
            problems.append(Problem(path, line_of(text, "texts"), f"texts.{name} is missing"))
            continue
        try:
            used = {f[1] for f in string.Formatter().parse(value) if f[1] is not None}
        except ValueError as exc:
            problems.append(Problem(path, line_of(text, name), f"texts.{name}: {exc}"))
            continue
        for unknown in sorted(used - allowed):
            problems.append(Problem(path, line_of(text, name),
                                    f"texts.{name}: unknown placeholder {{{unknown}}}"))
    for name in COMMANDS:
        words = commands.get(name) if isinstance(commands, dict) else None
        if not isinstance(words, list) or not words or not all(
                isinstance(w, str) and w.strip() for w in words):
            problems.append(Problem(path, line_of(text, name),
                                    f"commands.{name}: a list of words"))
    if problems:
        return empty
    return MaterialTexts(dict(texts), {n: tuple(commands[n]) for n in COMMANDS})
