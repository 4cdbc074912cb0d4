"""The console's content page: every message rendered as a customer sees it (sample names
filled in, link and mini-program cards with the catalog's product), the drops, the automatic
tag rules, the catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError

from guidebot.content import render
from guidebot.content.catalog import Catalog
from guidebot.content.library import Library
from guidebot.content.sop_cron import describe, parse_cron


def _card(item: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
    kind = str(item.get("type", ""))
    product = catalog.get(item.get("sku"))
    return {"type": kind, "title": item.get("title", "") or (product.name if product else ""),
            "desc": item.get("desc", ""), "url": item.get("url", ""),
            "page": item.get("page", "") or (product.page if product else ""),
            "sku": item.get("sku", ""), "price_fen": product.price_fen if product else None,
            "picture": item.get("pic_file", "") or item.get("file", "")}


def messages(library: Library, catalog: Catalog,
             sample: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    out = []
    for message_id, message in sorted(library.messages.items()):
        out.append({"id": message_id, "text": _rendered(message.text, sample),
                    "hours": [{"between": h.between, "weekdays": sorted(h.weekdays),
                               "text": _rendered(h.text, sample)} for h in message.hours],
                    "cards": [_card(a, catalog) for a in message.attachments]})
    return out


def _rendered(text: str, sample: Mapping[str, Mapping[str, str]]) -> str:
    try:
        return render.render(text, sample)
    except TemplateError as exc:  # shown, not a 500 (validation refuses such files)
        return f"[{type(exc).__name__}]"


def drops(library: Library) -> list[dict[str, Any]]:
    return [{"id": d.id, "title": d.title, "enabled": d.enabled, "cron": d.cron, "at": d.at,
             "cron_words": describe(parse_cron(d.cron)) if d.cron else None,
             "channel": d.channel, "message": d.message,
             "stores": list(d.audience.stores), "tags_any": list(d.audience.tags_any),
             "tags_none": list(d.audience.tags_none), "guides": list(d.audience.guides),
             "group_names": list(d.group_names)}
            for d in sorted(library.drops.values(), key=lambda d: d.id)]


def auto_tags(library: Library, *, enabled: bool) -> dict[str, Any]:
    """auto_tags.toml's rules in the file's order (card opens, 微信客服 messages, then paid
    orders), and whether they tag this tenant's customers."""
    rules: list[dict[str, Any]] = [
        {"source": "on_open", "categories": list(r.categories), "skus": list(r.skus),
         "tags": list(r.tags)} for r in library.auto_tags.on_open]
    rules += [{"source": "on_message", "keywords": list(r.keywords), "match": r.match,
               "tags": list(r.tags)} for r in library.auto_tags.on_message]
    rules += [{"source": "on_order", "categories": list(r.categories), "skus": list(r.skus),
               "min_paid_fen": r.min_paid_fen, "tags": list(r.tags)}
              for r in library.auto_tags.on_order]
    return {"enabled": enabled, "rules": rules}


def products(catalog: Catalog) -> list[dict[str, Any]]:
    return [{"sku": p.sku, "name": p.name, "category": p.category, "page": p.page,
             "price_fen": p.price_fen} for p in sorted(catalog.products.values(),
                                                         key=lambda p: p.sku)]
