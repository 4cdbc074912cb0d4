"""Customers' birthdays (生日关怀): brand HQ's CRM members' birthdays, set by the admin API
(one, or up to 10,000 at once by external_userid or unionid) and the console. A birthday is
"MM-DD" or "YYYY-MM-DD"; birthday SOPs (trigger `birthday`) enroll on them every year.
Feb 29 birthdays are celebrated on Feb 28 in years without one (guidebot/sop/scan.py)."""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from guidebot.commerce.identity import resolve_local
from guidebot.commerce.schema import CustomerRef
from guidebot.db.engine import Database
from guidebot.db.repo import birthdays as repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.types import utcnow
from guidebot.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

MAX_ROWS = 10_000
_FORM = re.compile(r"^(?:([0-9]{4})-)?([0-9]{2})-([0-9]{2})$")
YEARS = (1900, 2100)


@dataclass(frozen=True)
class Birthday:
    month: int
    day: int
    year: int | None = None

    def __str__(self) -> str:
        text = f"{self.month:02d}-{self.day:02d}"
        return f"{self.year:04d}-{text}" if self.year is not None else text


def parse(text: str) -> Birthday:
    """ "MM-DD" or "YYYY-MM-DD", a day that exists (Feb 29 without a year, or in a leap
    year); ValueError saying what is wrong."""
    found = _FORM.fullmatch(text.strip())
    if not found:
        raise ValueError('expected "MM-DD" or "YYYY-MM-DD"')
    year = int(found.group(1)) if found.group(1) else None
    month, day = int(found.group(2)), int(found.group(3))
    if year is not None and not YEARS[0] <= year <= YEARS[1]:
        raise ValueError(f"the year must be from {YEARS[0]} to {YEARS[1]}")
    try:
        date(year if year is not None else 2000, month, day)  # 2000: Feb 29 exists
    except ValueError:
        raise ValueError("no such day in the calendar") from None
    return Birthday(month, day, year)


def coming_birthday(month: int, day: int, today: date) -> date:
    """The next day (today included) a birthday of (month, day) is celebrated: Feb 29 on
    Feb 28 in years without one."""
    for year in (today.year, today.year + 1):
        leap_less = (month, day) == (2, 29) and not calendar.isleap(year)
        found = date(year, 2, 28) if leap_less else date(year, month, day)
        if found >= today:
            return found
    raise AssertionError("a birthday comes within a year")  # pragma: no cover


def shown(row: Any) -> str | None:
    """A stored birthday as the API shows it."""
    return str(Birthday(row.month, row.day, row.year)) if row is not None else None


@dataclass(frozen=True)
class Row:
    """One row of a bulk import, as the request gave it (already of the right types)."""

    external_userid: str | None
    unionid: str | None
    birthday: str | None


# Told the birthdays just stored (month, day by customer): birthday SOPs whose trigger day
# has already come this round enroll them now (SopService.birthdays_set).
BirthdaysStored = Callable[[str, Mapping[str, tuple[int, int]]], Awaitable[int]]


class Birthdays:
    def __init__(self, db: Database, stored: BirthdaysStored | None = None) -> None:
        self._db = db
        self._stored = stored

    async def _tell(self, tenant: str, birthdays: Mapping[str, Birthday]) -> None:
        if self._stored is not None and birthdays:
            await self._stored(tenant, {c: (b.month, b.day) for c, b in birthdays.items()})

    async def get(self, tenant: str, external_userid: str) -> str | None:
        async with self._db.read() as s:
            return shown(await repo.get(s, tenant=tenant, external_userid=external_userid))

    async def set_one(self, tenant: str, external_userid: str,
                      text: str | None) -> dict[str, Any]:
        """Set (or with None, forget) one customer's birthday: NotFound for a customer the
        tenant does not have, ValidationFailed naming `birthday` for a malformed one."""
        birthday = None
        if text is not None:
            try:
                birthday = parse(text)
            except ValueError as exc:
                raise ValidationFailed(f"birthday: {exc}", code="birthday.invalid",
                                       reason=str(exc)) from None
        async with self._db.write() as s:
            if await contacts_repo.get_customer(s, tenant=tenant,
                                                external_userid=external_userid) is None:
                raise NotFound(f"external_userid: no customer {external_userid} in this "
                               "tenant", code="customer.unknown",
                               external_userid=external_userid)
            if birthday is None:
                await repo.clear(s, tenant=tenant, customers=[external_userid])
            else:
                await repo.store(s, tenant=tenant, rows=[_stored(external_userid, birthday)],
                                 now=utcnow())
        log.info("birthday %s tenant=%s", "set" if birthday else "cleared", tenant)
        if birthday is not None:
            await self._tell(tenant, {external_userid: birthday})
        return {"external_userid": external_userid,
                "birthday": str(birthday) if birthday else None}

    async def import_rows(self, tenant: str, rows: Sequence[Row | tuple[str, str]]
                          ) -> dict[str, Any]:
        """Store every good row; the others are listed. `rows` holds, by index, a Row or
        (field, reason) for a row the request layer could not read. A row names its customer
        by external_userid or unionid (resolved like an order's, from stored identities);
        a customer the tenant does not have is listed under `unknown`, never created.
        A later row for the same customer wins."""
        failed: list[dict[str, Any]] = []
        wanted: list[tuple[int, Row, Birthday | None]] = []
        for index, row in enumerate(rows):
            if isinstance(row, tuple):
                failed.append({"index": index, "field": row[0], "reason": row[1]})
                continue
            if not row.external_userid and not row.unionid:
                failed.append({"index": index, "field": "external_userid",
                               "reason": "give external_userid or unionid"})
                continue
            try:
                wanted.append((index, row,
                               parse(row.birthday) if row.birthday is not None else None))
            except ValueError as exc:
                failed.append({"index": index, "field": "birthday", "reason": str(exc)})
        unknown: list[dict[str, Any]] = []
        chosen: dict[str, Birthday | None] = {}
        async with self._db.write() as s:
            known = await repo.known_customers(
                s, tenant=tenant, customers=[r.external_userid for _, r, _ in wanted
                                             if r.external_userid])
            for index, row, birthday in wanted:
                customer = (row.external_userid if row.external_userid in known
                            else None if row.external_userid
                            else await resolve_local(s, tenant, CustomerRef(None, row.unionid)))
                if customer is not None and not row.external_userid \
                        and customer not in known:  # a stored identity of a customer
                    known |= await repo.known_customers(s, tenant=tenant,  # not seen yet
                                                        customers=[customer])
                if customer is None or customer not in known:
                    unknown.append({"index": index, **({"external_userid": row.external_userid}
                                                       if row.external_userid else
                                                       {"unionid": row.unionid})})
                    continue
                chosen[customer] = birthday
            await repo.store(s, tenant=tenant, now=utcnow(), rows=[
                _stored(c, b) for c, b in sorted(chosen.items()) if b is not None])
            await repo.clear(s, tenant=tenant,
                             customers=sorted(c for c, b in chosen.items() if b is None))
        stored = sum(b is not None for b in chosen.values())
        log.info("birthdays imported tenant=%s rows=%s stored=%s cleared=%s failed=%s "
                 "unknown=%s", tenant, len(rows), stored, len(chosen) - stored, len(failed),
                 len(unknown))
        await self._tell(tenant, {c: b for c, b in chosen.items() if b is not None})
        return {"stored": stored, "cleared": len(chosen) - stored,
                "failed": sorted(failed, key=lambda f: int(f["index"])), "unknown": unknown}


def _stored(external_userid: str, birthday: Birthday) -> dict[str, Any]:
    return {"external_userid": external_userid, "month": birthday.month,
            "day": birthday.day, "year": birthday.year}
