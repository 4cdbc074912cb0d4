"""Per-msgtype checks of message/send content, with the sizes of FACTS §3.7."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from guidebot.sandbox import errors, params
from guidebot.sandbox.attachments import require_media
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON
from guidebot.sandbox.tenant import TenantState

TEXT_MAX_BYTES = 2048
CARD_TYPES = (
    "text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction",
)
_TOO_LARGE = errors.MESSAGE_TOO_LARGE

Check = Callable[[TenantState, Mapping[str, Any], float], JSON]


def _truncate(value: str, limit: int) -> str:
    return value.encode()[:limit].decode(errors="ignore")


def text(tenant: TenantState, content: Mapping[str, Any], now: float) -> JSON:
    """FACTS §3.7: text over 2048 bytes is truncated, not refused."""
    value = params.text(content, "content", required=True, missing=errors.TEXT_EMPTY)
    return {**content, "content": _truncate(value, TEXT_MAX_BYTES)}


def markdown(tenant: TenantState, content: Mapping[str, Any], now: float) -> JSON:
    # FACTS gives the 2048-byte limit but not whether WeCom truncates: the sandbox refuses.
    value = params.text(content, "content", required=True, missing=errors.TEXT_EMPTY)
    params.within_bytes(value, "markdown.content", TEXT_MAX_BYTES, _TOO_LARGE)
    return dict(content)


def textcard(tenant: TenantState, content: Mapping[str, Any], now: float) -> JSON:
    # Sizes from FACTS §3.7; over-long fields are refused with 45002 (FACTS does not say).
    for key, limit in (("title", 128), ("description", 512), ("url", 2048)):
        params.within_bytes(params.text(content, key, required=True), key, limit, _TOO_LARGE)
    params.text(content, "btntxt", max_chars=4)
    return dict(content)


def news(tenant: TenantState, content: Mapping[str, Any], now: float) -> JSON:
    articles = content.get("articles")
    if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
        raise ApiError(errors.INVALID_PARAM, "news needs 1-8 articles")
    for article in articles:
        params.text(article if isinstance(article, dict) else {}, "title", required=True)
    return dict(content)


def miniprogram_notice(tenant: TenantState, content: Mapping[str, Any], now: float) -> JSON:
    params.text(content, "appid", required=True)
    params.text(content, "title", required=True)
    params.within_bytes(params.text(content, "page"), "page", 1024, _TOO_LARGE)
    items = content.get("content_item") or []
    if not isinstance(items, list) or len(items) > 10:
        raise ApiError(errors.INVALID_PARAM, "content_item must be a list of at most 10")
    return dict(content)


def template_card(tenant: TenantState, content: Mapping[str, Any], now: float) -> JSON:
    if content.get("card_type") not in CARD_TYPES:
        raise ApiError(errors.INVALID_PARAM, f"card_type must be one of {', '.join(CARD_TYPES)}")
    return dict(content)


def media(tenant: TenantState, content: Mapping[str, Any], now: float) -> JSON:
    require_media(tenant, content.get("media_id"), now)
    return dict(content)


CHECKS: dict[str, Check] = {
    "text": text, "markdown": markdown, "textcard": textcard, "news": news,
    "miniprogram_notice": miniprogram_notice, "template_card": template_card,
    "image": media, "voice": media, "video": media, "file": media,
}
