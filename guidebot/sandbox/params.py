"""Typed reads of request fields that answer WeCom-style errcodes when a field is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guidebot.sandbox import errors
from guidebot.sandbox.errors import ApiError


def _bad(key: str, problem: str, errcode: int = errors.INVALID_PARAM) -> ApiError:
    return ApiError(errcode, f"invalid {key}: {problem}")


def text(
    data: Mapping[str, Any], key: str, *, required: bool = False, max_chars: int | None = None,
    missing: int = errors.INVALID_PARAM,
) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise _bad(key, "missing", missing)
        return ""
    if not isinstance(value, str):
        raise _bad(key, "must be a string")
    if max_chars is not None and len(value) > max_chars:
        raise _bad(key, f"longer than {max_chars} characters")
    return value


def integer(data: Mapping[str, Any], key: str, default: int, *, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(key, f"must be an integer in [{low}, {high}]")
    return value


def str_list(data: Mapping[str, Any], key: str, *, max_items: int | None = None) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(key, "must be a list of strings")
    if max_items is not None and len(value) > max_items:
        raise _bad(key, f"more than {max_items} items")
    return value


def obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise _bad(key, "must be an object")
    return value


def within_bytes(value: str, key: str, limit: int, errcode: int = errors.INVALID_PARAM) -> str:
    if len(value.encode()) > limit:
        raise _bad(key, f"longer than {limit} bytes", errcode)
    return value


def cursor(data: Mapping[str, Any]) -> int:
    """The sandbox's cursors are decimal offsets; WeCom's are opaque, so clients never parse."""
    value = data.get("cursor") or "0"
    if not isinstance(value, str) or not value.isdigit():
        raise _bad("cursor", "unknown cursor")
    return int(value)


def page(items: list[Any], start: int, limit: int) -> tuple[list[Any], str]:
    """One page of `items` and the next cursor ("" on the last page)."""
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else "")
