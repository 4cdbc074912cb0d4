"""Saved customer segments (客户分群): HQ names a filter over the tenant's customers (tags by
corp tag id, guides, stores, status, when they were added, purchases), sees how many match
now, pages and exports the members, and uses one as the audience of a 新建群发 or of an SOP
enrolment. Conditions are stored as given and evaluated whenever the segment is used (a
relative "added in the last N days" against that day), always by the customers page's
search in SQL: a page at a time for the members, as a clause of the audience's query for a
drop or an enrolment.

`fields` conditions (客户资料) name profile fields of content_library/profile_fields.toml and
their options as the file has them when the segment is saved; one naming a field or option
removed from the file since is shown as such (`removed_fields`) and still matches by the
values kept (removing a field keeps its values), until HQ edits the segment."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from guidebot.contacts import profile_fields as profile
from guidebot.content.profile_fields import ProfileField
from guidebot.db.engine import Database
from guidebot.db.models_segments import CustomerSegment
from guidebot.db.repo import console as console_repo
from guidebot.db.repo import segments as repo
from guidebot.db.repo.audiences import SegmentMatch
from guidebot.db.repo.field_match import FieldMatch
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, ValidationFailed
from guidebot.settings import Settings, TenantSettings
from guidebot.stats import customer_list, layers
from guidebot.stats.customer_list import CustomerPage, CustomerSearch

log = logging.getLogger(__name__)

LISTS = ("tags_all", "tags_any", "tags_none", "guides", "stores")
PURCHASED = ("yes", "no")
LAYERS = ("new", "active", "dormant", "lost")
MAX_DAYS = 3650
MAX_LIST = 200
# The list shows each segment's stored count (counted on save and whenever the segment is
# opened); one older than this is counted again by the list, at most REFRESH per request
# (the oldest first; one never counted, saved before counts were kept, is always counted),
# so a list of 500 segments costs at most REFRESH counts.
COUNT_FRESH_S = 600
REFRESH = 20
FIELDS = (*LISTS, "status", "added_from", "added_to", "added_days", "purchased",
          "quiet_days", "layer", "fields")
MAX_FIELD_CONDITIONS = 20
# a profile field condition's `op` by the field's kind (set / unset for every kind)
OPS = {"text": (), "choice": ("in",), "multi": ("has_any", "has_all"),
       "date": ("between",), "number": ("between",)}
FIELD_KEYS = ("field", "op", "values", "from", "to", "min", "max")


class SegmentRefused(ValidationFailed):
    """A refused condition: the API says `field: reason` and answers `code` segment.invalid
    (what it always answered) with this refusal's own code as `detail`; the console words
    the own code (`refusal.segment.<…>`) with the field named as its form labels it."""

    api_code = "segment.invalid"


def _refuse(reason: str, *, field: str, code: str, **params: object) -> ValidationFailed:
    return SegmentRefused(f"{field}: {reason}", code=code, field=field, reason=reason,
                          **params)


def _days(raw: Any, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        days = int(raw)
    except (TypeError, ValueError):
        raise _refuse(f"a whole number of days, 1 to {MAX_DAYS}", field=name, code="segment.days",
                      most=MAX_DAYS) from None
    if not 1 <= days <= MAX_DAYS or isinstance(raw, bool | float):
        raise _refuse(f"a whole number of days, 1 to {MAX_DAYS}", field=name, code="segment.days",
                      most=MAX_DAYS)
    return days


def checked(raw: Mapping[str, Any], tags: Mapping[str, str], guides: Mapping[str, str],
            stores: Mapping[str, str], zone: tzinfo,
            deleted: Mapping[str, str] | None = None,
            fields: Sequence[ProfileField] = ()) -> dict[str, Any]:
    """The conditions as stored (empty ones left out), else ValidationFailed naming the field
    ("conditions.tags_any: …"): tags by the tenant's corp tag ids, the tenant's guides and
    stores, a status of the customers page, added_from/added_to (the tenant's days) or
    added_days (the last N days, today included), purchased yes/no, quiet_days (bought, but
    not in the last N days), layer (the overview's customer layers as of today), fields
    (profile field conditions on the `fields` in force, `field_conditions`)."""
    deleted = deleted or {}  # corp tags deleted since (id → last name): named as such
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise _refuse(f"unknown condition (one of {', '.join(FIELDS)})",
                      field=f"conditions.{unknown[0]}", code="segment.unknown_condition")
    out: dict[str, Any] = {}
    for key, known in zip(LISTS, (tags, tags, tags, guides, stores), strict=True):
        values = raw.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values) \
                or len(values) > MAX_LIST:
            raise _refuse(f"a list of at most {MAX_LIST} ids", field=f"conditions.{key}",
                          code="segment.list", most=MAX_LIST)
        missing = [v for v in values if v not in known]
        if missing and missing[0] in deleted:
            raise _refuse(f"corp tag {deleted[missing[0]] or missing[0]!r} "
                          f"({missing[0]}) was deleted in WeCom; leave it out",
                          field=f"conditions.{key}", code="segment.tag_deleted",
                          tag=deleted[missing[0]] or missing[0])
        where, absent = f"conditions.{key}", missing[0] if missing else ""
        if absent and key == "guides":
            raise _refuse(f"no guide {absent!r} in this brand", field=where,
                          code="segment.no_guide", id=absent[:64])
        if absent and key == "stores":
            raise _refuse(f"no store {absent!r} in this brand", field=where,
                          code="segment.no_store", id=absent[:64])
        if absent:
            raise _refuse(f"no corp tag id {absent!r} in this brand", field=where,
                          code="segment.no_tag", id=absent[:64])
        if values:
            out[key] = sorted(set(values))
    status = raw.get("status") or ""
    if status:
        if status not in customer_list.STATUSES:
            raise _refuse(f"one of {', '.join(customer_list.STATUSES)}, or none",
                          field="conditions.status", code="segment.choice")
        out["status"] = status
    for key in ("added_from", "added_to"):
        value = raw.get(key) or ""
        try:
            if key == "added_from":
                customer_list.added_between(value, "", zone)
            else:
                customer_list.added_between("", value, zone)
        except (ValidationFailed, TypeError):
            raise _refuse("a date as YYYY-MM-DD (1970 to 2199)", field=f"conditions.{key}",
                          code="segment.date") from None
        if value:
            out[key] = value
    try:
        customer_list.added_between(out.get("added_from", ""), out.get("added_to", ""), zone)
    except ValidationFailed:
        raise _refuse("must not be after added_to", field="conditions.added_from",
                      code="segment.date_order") from None
    days = _days(raw.get("added_days"), "conditions.added_days")
    if days is not None:
        if "added_from" in out or "added_to" in out:
            raise _refuse("give it or added_from/added_to, not both",
                          field="conditions.added_days", code="segment.added_both")
        out["added_days"] = days
    purchased = raw.get("purchased") or ""
    if purchased:
        if purchased not in PURCHASED:
            raise _refuse("yes, no, or none", field="conditions.purchased", code="segment.choice")
        out["purchased"] = purchased
    quiet = _days(raw.get("quiet_days"), "conditions.quiet_days")
    if quiet is not None:
        if purchased == "no":
            raise _refuse("a customer who never bought has no last "
                          "purchase (leave purchased empty or yes)", field="conditions.quiet_days",
                          code="segment.quiet_never")
        out["quiet_days"] = quiet
    layer = raw.get("layer") or ""
    if layer:
        if layer not in LAYERS:
            raise _refuse(f"one of {', '.join(LAYERS)}, or none", field="conditions.layer",
                          code="segment.choice")
        out["layer"] = layer
    matches = field_conditions(raw.get("fields"), fields)
    if matches:
        out["fields"] = matches
    return out


def _unknown_field(where: str, field_id: object) -> ValidationFailed:
    return ValidationFailed(f"{where}.field: no field {field_id!r} in profile_fields.toml",
                            code="segment.unknown_field", field=f"{where}.field",
                            name=str(field_id)[:64])


def field_conditions(raw: Any, fields: Sequence[ProfileField]) -> list[dict[str, Any]]:
    """Profile field conditions as stored, each {field, op, …}: set / unset (has a value or
    not, any kind); in (choice: one of `values`); has_any / has_all (multi: holds any / every
    one of `values`); between (date: `from` and/or `to`, YYYY-MM-DD, inclusive; number: `min`
    and/or `max`, inclusive). A field or option not in the file refused (coded)."""
    if raw is None or raw == []:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_FIELD_CONDITIONS \
            or not all(isinstance(c, Mapping) for c in raw):
        raise _refuse(f"a list of at most {MAX_FIELD_CONDITIONS} "
                      "conditions, each {field, op, …}", field="conditions.fields",
                      code="segment.fields_list", most=MAX_FIELD_CONDITIONS)
    known = {f.id: f for f in fields}
    out: list[dict[str, Any]] = []
    for i, cond in enumerate(raw):
        where = f"conditions.fields.{i}"
        extra = sorted(set(cond) - set(FIELD_KEYS))
        if extra:
            raise _refuse(f"unknown key (one of {', '.join(FIELD_KEYS)})",
                          field=f"{where}.{extra[0]}", code="segment.field_key")
        field = known.get(cond.get("field"))  # type: ignore[arg-type]
        if field is None:
            raise _unknown_field(where, cond.get("field"))
        op = cond.get("op")
        ops = ("set", "unset", *OPS[field.kind])
        if op not in ops:
            raise _refuse(f"for a {field.kind} field one of {', '.join(ops)}", field=f"{where}.op",
                          code="segment.field_op", label=field.label)
        given = {k for k in ("values", "from", "to", "min", "max")
                 if cond.get(k) not in (None, "", [])}
        allowed = ({"values"} if op in ("in", "has_any", "has_all") else
                   {"from", "to"} if op == "between" and field.kind == "date" else
                   {"min", "max"} if op == "between" else set())
        if given - allowed:
            raise _refuse(f"not with op {op} on a "
                          f"{field.kind} field", field=f"{where}.{sorted(given - allowed)[0]}",
                          code="segment.field_extra", label=field.label)
        item: dict[str, Any] = {"field": field.id, "op": op}
        if allowed == {"values"}:
            values = cond.get("values")
            if not isinstance(values, list) or not values \
                    or not all(isinstance(v, str) for v in values):
                raise _refuse("a list of the field's options, at least one",
                              field=f"{where}.values", code="segment.field_values",
                              label=field.label)
            missing = [v for v in values if v not in field.options]
            if missing:
                raise ValidationFailed(
                    f"{where}.values: {missing[0]!r} is not an option of {field.id}",
                    code="segment.unknown_option", field=f"{where}.values",
                    name=field.id, label=field.label, option=missing[0][:64])
            item["values"] = [o for o in field.options if o in set(values)]
        elif allowed:
            if not given:
                raise _refuse(f"give {' and/or '.join(sorted(allowed))}", field=where,
                              code="segment.field_bounds", label=field.label)
            for key in sorted(given):
                try:
                    item[key] = profile.encoded(field, cond[key], None)
                except ValidationFailed as exc:
                    reason = exc.args[0].split(": ", 1)[-1]
                    if field.kind == "date":
                        raise _refuse(reason, field=f"{where}.{key}", code="segment.field_date",
                                      label=field.label) from None
                    raise _refuse(reason, field=f"{where}.{key}", code="segment.field_number",
                                  label=field.label) from None
            low, high = sorted(allowed, key=("from", "min", "to", "max").index)
            if low in item and high in item and (
                    item[low] > item[high] if field.kind == "date"
                    else float(item[low]) > float(item[high])):
                if field.kind == "date":
                    raise _refuse(f"must not be after {high}", field=f"{where}.{low}",
                                  code="segment.date_order", label=field.label)
                raise _refuse(f"must not be after {high}", field=f"{where}.{low}",
                              code="segment.range_order", label=field.label)
        out.append(item)
    return out


def field_matches(stored: Sequence[Mapping[str, Any]]) -> tuple[FieldMatch, ...]:
    """Stored profile field conditions as the repo evaluates them (by the stored values,
    whatever the file says now)."""
    found = []
    for c in stored:
        op = c["op"]
        if op == "between":
            dated = "from" in c or "to" in c
            found.append(FieldMatch(c["field"], "days" if dated else "numbers",
                                    low=str(c.get("from" if dated else "min", "")),
                                    high=str(c.get("to" if dated else "max", ""))))
        else:
            found.append(FieldMatch(c["field"], op, tuple(c.get("values", ()))))
    return tuple(found)


def removed_fields(conditions: Mapping[str, Any],
                   fields: Sequence[ProfileField]) -> list[dict[str, str]]:
    """The fields (option "") and options the conditions name that profile_fields.toml no
    longer has, each with the field's label now ("" for a removed field)."""
    known = {f.id: f for f in fields}
    gone: list[dict[str, str]] = []
    for c in conditions.get("fields", ()):
        field = known.get(c["field"])
        if field is None:
            gone.append({"field": c["field"], "label": "", "option": ""})
            continue
        gone.extend({"field": field.id, "label": field.label, "option": o}
                    for o in c.get("values", ()) if o not in field.options)
    unique: list[dict[str, str]] = []
    for g in gone:
        if g not in unique:
            unique.append(g)
    return unique


def search_of(conditions: Mapping[str, Any], tenant: TenantSettings,
              now: datetime) -> CustomerSearch:
    """Stored conditions as the customers page's search, relative days counted from `now`."""
    today = now.astimezone(tenant.tz).date()
    added_from, added_to = conditions.get("added_from", ""), conditions.get("added_to", "")
    if "added_days" in conditions:
        added_from = (today - timedelta(days=conditions["added_days"] - 1)).isoformat()
    quiet = conditions.get("quiet_days")
    layer_days = layers.bounds(today, today)  # the overview's layers for a range ending today

    def start(key: str) -> datetime:
        return datetime.combine(date.fromisoformat(layer_days[key]), time(0), tzinfo=tenant.tz)

    more = console_repo.Conditions(
        **{k: tuple(conditions.get(k, ())) for k in LISTS},
        purchased=conditions.get("purchased", ""),
        quiet_since=now - timedelta(days=quiet) if quiet else None,
        layer=conditions.get("layer", ""), layer_since=(start("new_from"), start("active_from")),
        fields=field_matches(conditions.get("fields", ())))
    return CustomerSearch(status=conditions.get("status", ""),
                          added=customer_list.added_between(added_from, added_to, tenant.tz),
                          more=more)


TAG_LISTS = ("tags_all", "tags_any", "tags_none")


def _tag_ids(row: CustomerSegment) -> set[str]:
    conditions = json.loads(row.conditions)
    return {i for key in TAG_LISTS for i in conditions.get(key, ())}


def _view(row: CustomerSegment, count: int | None, counted_at: datetime | None,
          deleted: Mapping[str, str], fields: Sequence[ProfileField]) -> dict[str, Any]:
    """The segment as shown; `deleted_tags` the corp tags its conditions name that were
    deleted since (id and last name): carried by no one, so a tags_all or tags_any naming
    only those matches no one and tags_none ignores them, until HQ edits the segment;
    `removed_fields` the profile fields and options removed from the file since."""
    conditions = json.loads(row.conditions)
    return {"id": row.id, "name": row.name, "conditions": conditions,
            "deleted_tags": [{"id": i, "name": deleted[i]} for i in sorted(_tag_ids(row))
                             if i in deleted],
            "removed_fields": removed_fields(conditions, fields),
            "count": count, "counted_at": counted_at, "operator": row.operator,
            "created_at": row.created_at, "updated_at": row.updated_at}


async def count_of(db: Database, tenant: str, search: CustomerSearch) -> int:
    async with db.read() as s:
        return await console_repo.count_customers(
            s, tenant=tenant, status=search.status, added=search.added,
            more=search.more or console_repo.Conditions())


async def audience_segment(db: Database, tenant: str, segment_id: int) -> CustomerSegment:
    """The tenant's segment an audience names, else NotFound naming audience.segment."""
    async with db.read() as s:
        row = await repo.get(s, tenant=tenant, segment_id=segment_id)
    if row is None:
        raise NotFound(f"audience.segment: no segment {segment_id} in this brand",
                       code="segment.unknown", segment_id=segment_id)
    return row


async def segment_match(db: Database, tenant: TenantSettings, segment_id: int,
                        now: datetime) -> SegmentMatch:
    """The segment's conditions as they match at `now`, for the SQL of an audience that
    names it (a drop's, an enrolment's); NotFound when the tenant has no such segment."""
    row = await audience_segment(db, tenant.id, segment_id)
    search = search_of(json.loads(row.conditions), tenant, now)
    return SegmentMatch(status=search.status, added=search.added,
                        more=search.more or console_repo.Conditions())


class Segments:
    def __init__(self, settings: Settings, db: Database,
                 clock: Callable[[], datetime] = utcnow,
                 fields: Callable[[], Sequence[ProfileField]] = tuple) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock
        self._fields = fields  # the profile fields in force (the library's, reloaded)

    async def known(self, tenant: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """The tenant's corp tags, guides and stores (id → name) conditions may name."""
        async with self._db.read() as s:
            return await repo.known(s, tenant=tenant)

    async def _checked(self, tenant: str, name: str, conditions: Mapping[str, Any]) -> str:
        name = name.strip()
        if not name or len(name) > 64:
            raise _refuse("required, at most 64 characters", field="name", code="segment.name",
                          most=64)
        tags, guides, stores = await self.known(tenant)
        named = {str(i) for key in TAG_LISTS for i in (conditions.get(key) or ())
                 if isinstance(conditions.get(key), list)} - set(tags)
        async with self._db.read() as s:
            deleted = await repo.deleted_tags(s, tenant=tenant, tag_ids=named)
        return json.dumps(checked(conditions, tags, guides, stores,
                                  self._settings.tenant(tenant).tz,
                                  {i: n for i, n in deleted.items() if n},
                                  self._fields()),
                          ensure_ascii=False)

    async def preview(self, tenant: str, conditions: Mapping[str, Any]) -> int:
        """How many customers these conditions (checked) find now."""
        stored = json.loads(await self._checked(tenant, "preview", conditions))
        return await count_of(self._db, tenant, self._search(tenant, stored))

    def _search(self, tenant: str, conditions: Mapping[str, Any]) -> CustomerSearch:
        return search_of(conditions, self._settings.tenant(tenant), self._clock())

    async def create(self, tenant: str, name: str, conditions: Mapping[str, Any],
                     operator: str) -> dict[str, Any]:
        stored = await self._checked(tenant, name, conditions)
        async with self._db.write() as s:
            if len(await repo.of_tenant(s, tenant=tenant)) >= repo.LIMIT:
                raise _refuse(f"a brand keeps at most {repo.LIMIT} segments", field="name",
                              code="segment.limit", most=repo.LIMIT)
            segment_id = await repo.insert(s, tenant=tenant, name=name.strip(),
                                           conditions=stored, operator=operator[:64],
                                           now=self._clock())
        log.info("segment %s tenant=%s created by %s", segment_id, tenant, operator[:64])
        return await self.get(tenant, segment_id)

    async def update(self, tenant: str, segment_id: int, name: str,
                     conditions: Mapping[str, Any], operator: str) -> dict[str, Any]:
        await self._row(tenant, segment_id)
        stored = await self._checked(tenant, name, conditions)
        async with self._db.write() as s:
            await repo.change(s, tenant=tenant, segment_id=segment_id, name=name.strip(),
                              conditions=stored, operator=operator[:64], now=self._clock())
        log.info("segment %s tenant=%s changed by %s", segment_id, tenant, operator[:64])
        return await self.get(tenant, segment_id)

    async def delete(self, tenant: str, segment_id: int) -> None:
        async with self._db.write() as s:
            if not await repo.remove(s, tenant=tenant, segment_id=segment_id):
                raise self._unknown(segment_id)
        log.info("segment %s tenant=%s deleted", segment_id, tenant)

    @staticmethod
    def _unknown(segment_id: int) -> NotFound:
        return NotFound(f"segment_id: no segment {segment_id} in this brand",
                        code="segment.unknown", segment_id=segment_id)

    async def _row(self, tenant: str, segment_id: int) -> CustomerSegment:
        async with self._db.read() as s:
            row = await repo.get(s, tenant=tenant, segment_id=segment_id)
        if row is None:
            raise self._unknown(segment_id)
        return row

    async def search(self, tenant: str, segment_id: int) -> CustomerSearch:
        row = await self._row(tenant, segment_id)
        return self._search(tenant, json.loads(row.conditions))

    async def get(self, tenant: str, segment_id: int) -> dict[str, Any]:
        """The segment with its count now (kept as the count the list shows)."""
        row = await self._row(tenant, segment_id)
        search = self._search(tenant, json.loads(row.conditions))
        now = self._clock()
        count = await count_of(self._db, tenant, search)
        async with self._db.write() as s:
            await repo.store_counts(s, tenant=tenant, counts={segment_id: count}, at=now)
            deleted = await repo.deleted_tags(s, tenant=tenant, tag_ids=_tag_ids(row))
        return _view(row, count, now, deleted, self._fields())

    async def names(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's segments' ids and names (a form's choice of audience; no counts)."""
        async with self._db.read() as s:
            return [{"id": r.id, "name": r.name}
                    for r in await repo.of_tenant(s, tenant=tenant)]

    async def listed(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's segments, oldest first, each with its stored count and when it was
        counted; counts older than COUNT_FRESH_S are counted again first, REFRESH at most."""
        async with self._db.read() as s:
            rows = await repo.of_tenant(s, tenant=tenant)
        now = self._clock()
        fresh_after = now - timedelta(seconds=COUNT_FRESH_S)
        never = [r for r in rows if r.counted_at is None or r.last_count is None]
        stale = sorted((r for r in rows if r.counted_at is not None
                        and r.last_count is not None and r.counted_at < fresh_after),
                       key=lambda r: r.counted_at or now)
        counts: dict[int, int] = {}
        for row in [*never, *stale[:REFRESH]]:
            assert row.id is not None
            counts[row.id] = await count_of(self._db, tenant,
                                            self._search(tenant, json.loads(row.conditions)))
        if counts:
            async with self._db.write() as s:
                await repo.store_counts(s, tenant=tenant, counts=counts, at=now)
        async with self._db.read() as s:
            deleted = await repo.deleted_tags(
                s, tenant=tenant, tag_ids={i for r in rows for i in _tag_ids(r)})
        fields = self._fields()
        return [_view(r, counts[r.id], now, deleted, fields) if r.id in counts
                else _view(r, r.last_count, r.counted_at, deleted, fields) for r in rows]

    async def members(self, tenant: str, segment_id: int, *, limit: int,
                      after: str = "") -> CustomerPage:
        """A page of the customers matching now, newest first (the customers page's order)."""
        search = await self.search(tenant, segment_id)
        return await customer_list.page(self._db, tenant, search, limit=limit, after=after)

    async def export_csv(self, tenant: str, segment_id: int) -> AsyncIterator[str]:
        """The members as the customers page's CSV (same columns and escaping, the profile
        fields in force included)."""
        search = await self.search(tenant, segment_id)
        return customer_list.export_csv(self._db, tenant, self._settings.tenant(tenant).tz,
                                        search, fields=self._fields())
