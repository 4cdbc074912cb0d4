"""Every admin route, and the OpenAPI document generated from their models (built once)."""

from __future__ import annotations

from functools import cache
from typing import Any

from guidebot.web.api import (
    audit,
    birthdays,
    commerce,
    contacts,
    drops,
    group_codes,
    groups,
    kf,
    materials,
    pretags,
    segments,
    sop,
    tags,
    targets,
    transfers,
    watch,
)
from guidebot.web.api.openapi import openapi_document
from guidebot.web.api.parsing import Endpoint


def endpoints() -> list[Endpoint]:
    return [*contacts.ENDPOINTS, *sop.ENDPOINTS, *commerce.ENDPOINTS, *kf.ENDPOINTS,
            *materials.ENDPOINTS, *transfers.ENDPOINTS, *groups.ENDPOINTS,
            *group_codes.ENDPOINTS, *birthdays.ENDPOINTS, *targets.ENDPOINTS, *drops.ENDPOINTS,
            *segments.ENDPOINTS, *watch.ENDPOINTS, *tags.ENDPOINTS, *pretags.ENDPOINTS,
            *audit.ENDPOINTS]


@cache
def document() -> dict[str, Any]:
    return openapi_document(endpoints())
