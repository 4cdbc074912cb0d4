"""The product catalog (content_library/catalog.toml): card titles, pages and categories."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from guidebot.errors import ConfigError

DEFAULT_PAGE = "pages/index/index.html"
DEFAULT_CARD_TITLE = "guidebot"  # without catalog.toml; the shipped library sets its own
MAX_TITLE_BYTES = 64  # FACTS.md: a mini-program card's title is at most 64 bytes


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    page: str
    price_fen: int = 0
    description: str = ""
    stock: int | None = None  # pieces; None: not tracked in the catalog
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(eq=False)
class Catalog:
    """The catalog in force. One object for the process, like the content Library: services
    keep a reference, and a reload swaps its contents in place (`replace_with`, content/
    reload.py), so chat answers, cards and the sidebar all see the new prices; what a
    service builds from it is built again when `generation` has moved on."""

    products: dict[str, Product]
    default_page: str = DEFAULT_PAGE
    default_card_title: str = DEFAULT_CARD_TITLE
    generation: int = field(default=0, init=False)  # replacements so far

    def replace_with(self, other: Catalog) -> None:
        """Take `other`'s content. No await happens here, so no coroutine sees half of it."""
        self.products = other.products
        self.default_page, self.default_card_title = other.default_page, other.default_card_title
        self.generation += 1

    def same(self, other: Catalog) -> bool:
        return (self.products, self.default_page, self.default_card_title) == (
            other.products, other.default_page, other.default_card_title)

    def cards(self) -> dict[str, tuple[str, str]]:
        """sku → (name, page), for materials' cards (content/materials.py)."""
        return {p.sku: (p.name, p.page) for p in self.products.values()}

    def names(self) -> tuple[set[str], set[str]]:
        """The skus and the categories, for automatic tag rules (content/auto_tags.py)."""
        return set(self.products), {p.category for p in self.products.values() if p.category}

    def get(self, sku: str | None) -> Product | None:
        return self.products.get(sku) if sku else None

    def category(self, sku: str) -> str:
        product = self.products.get(sku)
        return product.category if product else ""


def load_catalog(root: Path) -> Catalog:
    """An absent catalog is empty; a malformed one is a config error naming the file."""
    path = root / "catalog.toml"
    if not path.exists():
        return Catalog({})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        default = str(data.get("default_page") or DEFAULT_PAGE)
        products = {p["sku"]: Product(p["sku"], p["name"], p.get("category", ""),
                                      p.get("page") or default, int(p.get("price_fen", 0)),
                                      str(p.get("description", "")),
                                      None if p.get("stock") is None else int(p["stock"]),
                                      tuple((str(k), str(v)) for k, v
                                            in dict(p.get("attributes", {})).items()))
                    for p in data.get("products", [])}
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(str(path), "products", f"invalid catalog: {exc}") from None
    title = data.get("default_card_title", DEFAULT_CARD_TITLE)
    if not isinstance(title, str) or not title.strip() or len(title.encode()) > MAX_TITLE_BYTES:
        raise ConfigError(str(path), "default_card_title",
                          f"must be a non-empty string of at most {MAX_TITLE_BYTES} bytes")
    return Catalog(products, data.get("default_page", DEFAULT_PAGE), title)
