"""Opaque page cursors of the console's lists and the admin API's listings: the position of
the last row shown (an instant and the row's key), so the next page starts after it with one
indexed range read instead of an offset that counts every row before it; and the CSV export
that walks such a list to its end."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from guidebot.commerce.statements import cell
from guidebot.errors import ValidationFailed


def encode(at: datetime, key: str) -> str:
    raw = f"{at.isoformat()}\t{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str]:
    """A cursor a list gave back as (instant, key); anything else is refused."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = raw.split("\t")
        when: datetime | None = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        when, key = None, ""
    if when is None or when.tzinfo is None or not key:
        raise ValidationFailed("after: not a cursor this list gave", code="list.bad_cursor")
    return when, key


async def csv_pages(fields: Sequence[str],
                    pages: Callable[[str], Awaitable[tuple[list[dict[str, Any]], str | None]]]
                    ) -> AsyncIterator[str]:
    """CSV text of every row a paged list gives, header first, one chunk per page: `pages`
    answers the rows after a cursor ("" for the first page) and the next cursor (None on the
    last). Cells a spreadsheet would run as formulas are defused."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    after: str | None = ""
    while after is not None:
        rows, after = await pages(after)
        writer.writerows({k: cell(v) for k, v in row.items()} for row in rows)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
