"""客户资料: the values of the brand's customer profile fields (content_library/
profile_fields.toml) for one customer — per customer, whichever guide follows them.

Guides set them from the chat sidebar (SidebarService checks that they actively follow the
customer; a field with `guides_edit = false` is HQ's), HQ from the console's customer page and
its CRM through the admin API. A value is checked against its field's kind and options; a
request with any bad value stores nothing. None, "" and [] clear a value. A value equal to the
stored one is left as it is (who set it and when stay). A choice or multi value that is no
longer among the field's options is kept and shown marked (`stale`); it may be sent back as it
is, but not newly chosen. Values of fields removed from the file are kept, not shown.

Values are logged by field id only, never their text.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from guidebot.contacts.views import require_known
from guidebot.content.profile_fields import ProfileField
from guidebot.db.engine import Database
from guidebot.db.models_profile import HQ as HQ  # set_by of HQ's values, for the web layer
from guidebot.db.models_profile import CustomerFieldValue
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import profile_fields as repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.settings import TenantSettings

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^-?\d{1,15}(\.\d{1,6})?$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")  # not the ISO week dates fromisoformat takes
EMPTY: tuple[object, ...] = (None, "", [])


def _refuse(field: ProfileField, code: str, reason: str, **params: object) -> ValidationFailed:
    return ValidationFailed(f"values.{field.id}: {reason}", code=f"profile.{code}",
                            field=field.id, label=field.label, **params)


def decoded(field: ProfileField, text: str) -> Any:
    """A stored text as the field's value: a list for multi, a number for number."""
    if field.kind == "multi":
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            return [text]
        return [str(i) for i in items] if isinstance(items, list) else [str(items)]
    if field.kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if "." not in text and math.isfinite(number) else number
    return text


def encoded(field: ProfileField, raw: object, current: str | None) -> str | None:
    """The text to store for `raw`, None to clear it; ValidationFailed naming the field.
    `current`: the stored text, whose options stay allowed though no longer offered."""
    if raw in EMPTY:
        return None
    kept = decoded(field, current) if current is not None else None
    if field.kind == "text":
        if not isinstance(raw, str):
            raise ValidationFailed(f"values.{field.id}: a text", code="profile.text",
                                   field=field.id, label=field.label, most=field.max_length)
        text = raw.strip()
        if len(text) > field.max_length:
            raise ValidationFailed(f"values.{field.id}: at most {field.max_length} "
                                   "characters", code="profile.text", field=field.id,
                                   label=field.label, most=field.max_length)
        return text or None
    if field.kind == "choice":
        if not isinstance(raw, str) or (raw not in field.options and raw != kept):
            raise ValidationFailed(f"values.{field.id}: one of {', '.join(field.options)}",
                                   code="profile.choice", field=field.id, label=field.label)
        return raw
    if field.kind == "multi":
        allowed = set(field.options) | set(kept or [])
        if (not isinstance(raw, list) or not all(isinstance(v, str) and v in allowed
                                                 for v in raw)):
            raise ValidationFailed(f"values.{field.id}: a list of "
                                   f"{', '.join(field.options)}", code="profile.multi",
                                   field=field.id, label=field.label)
        order: dict[str, int] = {}
        for option in [*field.options, *(kept or [])]:
            order.setdefault(option, len(order))
        return json.dumps(sorted(set(raw), key=order.__getitem__), ensure_ascii=False)
    if field.kind == "date":
        try:
            date.fromisoformat(raw if isinstance(raw, str) and _DATE.fullmatch(raw) else "")
        except ValueError:
            raise ValidationFailed(f"values.{field.id}: a date YYYY-MM-DD", code="profile.date",
                                   field=field.id, label=field.label) from None
        return str(raw)
    text = (str(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool)
            else raw.strip() if isinstance(raw, str) else "")
    if not _NUMBER.fullmatch(text):
        raise ValidationFailed(f"values.{field.id}: a number (up to 15 digits, 6 after the "
                               "point)", code="profile.number", field=field.id,
                               label=field.label)
    return text


def shown(field: ProfileField, row: CustomerFieldValue | None, names: Mapping[str, str],
          tenant: TenantSettings) -> dict[str, Any]:
    """A field with the customer's value, who set it (`set_by`: a guide's userid or "hq")
    and when (`at` UTC ISO, `when` the tenant's YYYY-MM-DD HH:MM); `stale`: the values no
    longer among the field's options."""
    value = decoded(field, row.value) if row is not None else None
    chosen: list[Any] = (list(value or []) if field.kind == "multi" else
                         [value] if field.kind == "choice" else [])
    return {
        "id": field.id, "label": field.label, "kind": field.kind,
        "options": list(field.options), "max_length": field.max_length,
        "guides_edit": field.guides_edit, "value": value,
        "stale": [v for v in chosen if v is not None and v not in field.options],
        "set_by": row.set_by if row is not None else None,
        "set_by_name": (names.get(row.set_by) or row.set_by if row.set_by != HQ else None)
        if row is not None else None,
        "at": row.set_at.isoformat() if row is not None else None,
        "when": row.set_at.astimezone(tenant.tz).strftime("%Y-%m-%d %H:%M")
        if row is not None else None,
    }


async def of_customer(db: Database, tenant: TenantSettings, fields: Sequence[ProfileField],
                      external_userid: str) -> list[dict[str, Any]]:
    """The fields in force, in the file's order, each with the customer's value (`shown`);
    NotFound for a customer this tenant does not know."""
    await require_known(db, tenant.id, external_userid=external_userid)
    async with db.read() as s:
        rows = {r.field: r for r in await repo.of_customer(s, tenant=tenant.id,
                                                           external_userid=external_userid)}
        guides = sorted({r.set_by for r in rows.values() if r.set_by != HQ})
        names = {u: n for u, (n, _) in (await contacts_repo.guide_names(
            s, tenant=tenant.id, userids=guides)).items()}
    return [shown(f, rows.get(f.id), names, tenant) for f in fields]


async def set_values(db: Database, tenant: TenantSettings, fields: Sequence[ProfileField],
                     external_userid: str, values: Mapping[str, object], *,
                     by: str) -> list[str]:
    """Set or clear the named fields' values as `by` (a guide's userid, or "hq"); the ids of
    the fields changed. ValidationFailed naming the first bad field (nothing stored),
    NotFound for a customer this tenant does not know."""
    await require_known(db, tenant.id, external_userid=external_userid)
    known = {f.id: f for f in fields}
    async with db.read() as s:
        stored = {r.field: r.value for r in await repo.of_customer(
            s, tenant=tenant.id, external_userid=external_userid)}
    changes: dict[str, str | None] = {}
    for field_id, raw in values.items():
        field = known.get(field_id)
        if field is None:
            raise ValidationFailed(f"values.{field_id}: no such field in "
                                   "profile_fields.toml", code="profile.unknown_field",
                                   field=field_id)
        text = encoded(field, raw, stored.get(field_id))
        if text == stored.get(field_id):
            continue
        if by != HQ and not field.guides_edit:
            raise ValidationFailed(f"values.{field.id}: set by HQ only",
                                   code="profile.locked", field=field.id, label=field.label)
        changes[field_id] = text
    if changes:
        async with db.write() as s:
            await repo.apply(s, tenant=tenant.id, external_userid=external_userid,
                             values=changes, set_by=by, now=utcnow())
    log.info("profile fields set tenant=%s by=%s customer=%s fields=%s", tenant.id, by,
             external_userid, ",".join(sorted(changes)) or "-")
    return sorted(changes)


def csv_columns(fields: Sequence[ProfileField]) -> list[str]:
    """The customers export's columns for the fields in force: field:<id>."""
    return [f"field:{f.id}" for f in fields]


def csv_cells(fields: Sequence[ProfileField], stored: Mapping[str, str]) -> dict[str, str]:
    """One customer's cells: a multi value's options joined by ";", an unset one empty."""
    cells = {}
    for f in fields:
        text = stored.get(f.id)
        value = decoded(f, text) if text is not None else ""
        cells[f"field:{f.id}"] = ";".join(value) if isinstance(value, list) else str(value)
    return cells
