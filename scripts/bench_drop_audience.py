"""Drop audience benchmark: the relations a 群发 drop to a tag audience reaches, resolved
three ways: old (every live relation and every customer's tag names of the tenant read into
Python, filtered there), pages (the audience filtered in SQL, read in keyset pages of 5,000
relations in (guide, customer) order, each page its own read) and new (the audience filtered
in SQL by one statement in one read, fetched 5,000 relations at a time; on PostgreSQL
planned without nested loops).

Seeded, not timed: N customers over 200 guides in 20 stores, one relation each and a second
guide for every 20th customer, two corp tags per customer out of 30 (the audience's tag on
every 10th customer), one in 100 opted out. Timed: the audience `tags_any = [that tag]`
resolved into each guide's customers (what `_fire` builds its tasks from), the chosen ways
run in turn; each run's wall time, then the same run again under tracemalloc for its peak of
Python memory. The old ways find every admitted relation (21,000 at the default scale); the
new way reaches each customer once (20,000: a customer with two guides, neither bound, is
reached through the relation begun last, here the second, added at the same time and
inserted after the first). All must agree once the old ways' relations are narrowed the same
way (`_once`).

    python scripts/bench_drop_audience.py [--customers 200000] [--runs 3]
        [--database-url URL] [--no-analyze] [--paths old,pages,new]

A PostgreSQL database given by URL is migrated; its rows of the tenant "bench" are replaced,
and the seeded tables analysed (as autovacuum would). With --no-analyze they are not: the
database must be fresh (its tables never analysed) and autovacuum is switched off for the
seeded tables, as right after a brand's bulk import, before autovacuum's next round.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import and_, delete, insert, or_, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from guidebot.content.sop_spec import Audience  # noqa: E402
from guidebot.db.engine import Database  # noqa: E402
from guidebot.db.migrate import upgrade_async  # noqa: E402
from guidebot.db.models import CorpTag, Customer, CustomerTag, Follow, Guide, Store, Tenant  # noqa: E402
from guidebot.db.models_kf import OptOut  # noqa: E402
from guidebot.db.repo import audiences  # noqa: E402
from guidebot.db.repo.audiences import F  # noqa: E402

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
GUIDES, STORES, TAGS = 200, 20, 30
TARGET = "tag03"  # on every 10th customer of each guide
CHUNK = 20_000
PAGE = 5000  # guidebot.sop.drops.AUDIENCE_PAGE

ByGuide = dict[str, list[str]]


def _rows(customers: int) -> dict[Any, list[dict[str, Any]]]:
    def guide(i: int) -> str:
        return f"guide{i % GUIDES:03d}"

    rows: dict[Any, list[dict[str, Any]]] = {
        Tenant: [{"id": "bench", "corp_id": "wwbench0000000001", "created_at": T0}],
        Store: [{"tenant": "bench", "store_id": f"s{s:02d}", "name": "", "created_at": T0}
                for s in range(STORES)],
        Guide: [{"tenant": "bench", "userid": guide(g), "name": "",
                 "store_id": f"s{g % STORES:02d}", "created_at": T0} for g in range(GUIDES)],
        CorpTag: [{"tenant": "bench", "tag_id": f"et{t:02d}", "name": f"tag{t:02d}",
                   "group_id": "", "group_name": "", "deleted": False} for t in range(TAGS)],
        Customer: [], Follow: [], CustomerTag: [], OptOut: []}
    for i in range(customers):
        ext = f"wm{i:09d}"
        rows[Customer].append({"tenant": "bench", "external_userid": ext, "name": "",
                               "avatar": "", "corp_name": "", "created_at": T0})
        for g in ([i, i + 1] if i % 20 == 0 else [i]):
            rows[Follow].append({"tenant": "bench", "guide": guide(g), "external_userid": ext,
                                 "status": "active", "state": "", "added_at": T0})
        for t in ((i // GUIDES) % 10, 10 + (i * 7) % 20):  # each guide: 10 % with TARGET
            rows[CustomerTag].append({"tenant": "bench", "external_userid": ext,
                                      "guide": guide(i), "tag_id": f"et{t:02d}",
                                      "added_at": T0})
        if (i // GUIDES) % 100 == 7:
            rows[OptOut].append({"tenant": "bench", "external_userid": ext, "msgid": "m",
                                 "opted_out_at": T0})
    return rows


async def seed(url: str, customers: int, analyze: bool) -> None:
    await upgrade_async(url)
    rows = _rows(customers)
    if url.startswith("sqlite"):  # sqlite3 directly: seconds instead of minutes
        conn = sqlite3.connect(url.split("///", 1)[1])
        for model, items in rows.items():
            table = model.__table__
            cols = [c.name for c in table.columns if c.name in items[0]] if items else []
            if not cols:
                continue
            conn.executemany(
                f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES "
                f"({', '.join('?' for _ in cols)})",
                ([_sqlite(r[c]) for c in cols] for r in items))
        conn.commit()
        conn.close()
        return
    db = Database(url)
    if not analyze:
        await _never_analysed(db, rows)
    async with db.write() as s:
        for model in reversed(list(rows)):
            await s.execute(delete(model.__table__).where(  # type: ignore[attr-defined]
                model.__table__.c["id" if model is Tenant else "tenant"] == "bench"))  # type: ignore[attr-defined]
    for model, items in rows.items():
        for start in range(0, len(items), CHUNK):
            async with db.write() as s:
                await s.execute(insert(model.__table__), items[start:start + CHUNK])  # type: ignore[attr-defined]
    if analyze:  # what autovacuum does to a table that grew
        async with db.engine.connect() as conn:
            for model in rows:
                await conn.execute(text(f"ANALYZE {model.__table__.name}"))  # type: ignore[attr-defined]
            await conn.commit()
    await db.dispose()


async def _never_analysed(db: Database, rows: dict[Any, list[dict[str, Any]]]) -> None:
    """--no-analyze: the seeded tables must never have been analysed (a fresh database), and
    autovacuum is kept from analysing them during the run (a brand's import and its 群发 at
    once, before autovacuum's next round)."""
    names = [model.__table__.name for model in rows]  # type: ignore[attr-defined]
    async with db.engine.connect() as conn:
        analysed = (await conn.execute(text(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:names) "
            "AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)"),
            {"names": names})).scalars().all()
        if analysed:
            raise SystemExit(f"--no-analyze wants a fresh database: {', '.join(analysed)} "
                             "analysed already")
        for name in names:
            await conn.execute(text(f"ALTER TABLE {name} SET (autovacuum_enabled = false)"))
        await conn.commit()


def _sqlite(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


# -- the code before: copied from guidebot/sop/drops.py and guidebot/db/repo/sop_tasks.py
# (47e40f9), the quota and the segment left out (unchanged and not asked for here)


async def _old_audience(session: AsyncSession, *,
                        tenant: str) -> list[tuple[str, str | None, str]]:
    opted_out = select(OptOut.external_userid).where(
        OptOut.tenant == Follow.tenant, OptOut.external_userid == Follow.external_userid)
    stmt = (select(Follow.guide, Guide.store_id, Follow.external_userid)
            .outerjoin(Guide, (Guide.tenant == Follow.tenant) & (Guide.userid == Follow.guide))
            .where(Follow.tenant == tenant, Follow.status == "active", ~opted_out.exists())
            .order_by(Follow.guide, Follow.external_userid))  # type: ignore[arg-type]
    return [tuple(r) for r in (await session.execute(stmt)).all()]  # type: ignore[misc]


async def _old_tag_names(session: AsyncSession, *, tenant: str) -> dict[str, set[str]]:
    stmt = (select(CustomerTag.external_userid, CorpTag.name)
            .join(CorpTag, (CorpTag.tenant == CustomerTag.tenant)
                  & (CorpTag.tag_id == CustomerTag.tag_id))
            .where(CustomerTag.tenant == tenant, CorpTag.deleted.is_(False)))  # type: ignore[attr-defined]
    out: dict[str, set[str]] = {}
    for customer, name in (await session.execute(stmt)).all():
        out.setdefault(customer, set()).add(name)
    return out


async def old_path(db: Database, audience: Audience) -> ByGuide:
    async with db.read() as s:
        rows = await _old_audience(s, tenant="bench")
        tags = await _old_tag_names(s, tenant="bench")
    by_guide: ByGuide = {}
    for guide, store, customer in rows:
        if audience.admits(tags.get(customer, set()), store, guide):
            by_guide.setdefault(guide, []).append(customer)
    return by_guide


# -- the keyset pages: copied from guidebot/db/repo/audiences.py `page` and
# guidebot/sop/drops.py `_relations` (2598756): each page its own short read


async def pages_path(db: Database, audience: Audience) -> ByGuide:
    wanted = _filter(audience)
    by_guide: ByGuide = {}
    after: tuple[str, str] | None = None
    while True:
        async with db.read() as s:
            stmt = audiences.relations(audiences._with_guide(select(F.guide, F.external_userid)),
                                       tenant="bench", audience=wanted)
            if after is not None:
                guide, customer = after
                stmt = stmt.where(F.guide >= guide, or_(
                    F.guide > guide, and_(F.guide == guide, F.external_userid > customer)))
            stmt = stmt.order_by(F.guide, F.external_userid).limit(PAGE)
            rows = [(g, c) for g, c in (await s.execute(stmt)).all()]
        for guide, customer in rows:
            by_guide.setdefault(guide, []).append(customer)
        if len(rows) < PAGE:
            return by_guide
        after = rows[-1]


# -- the code now: guidebot/sop/drops.py `_relations` (no segment, so no segment read): one
# statement in one read, fetched a part at a time; on PostgreSQL without nested loops


async def new_path(db: Database, audience: Audience) -> ByGuide:
    by_guide: ByGuide = {}
    async with db.read() as s:
        async for rows in audiences.admitted(s, tenant="bench", audience=_filter(audience),
                                             part=PAGE, once=audiences.Once()):
            for guide, customer, via in rows:
                if via == guide:
                    by_guide.setdefault(guide, []).append(customer)
    return by_guide


def _once(found: ByGuide) -> ByGuide:
    """The relations kept when each customer is reached once: of a customer with two guides
    (guide(i) and guide(i + 1), same added_at, no binding), the relation inserted last."""
    def second(customer: str) -> str:
        return f"guide{(int(customer[2:]) + 1) % GUIDES:03d}"

    count: dict[str, int] = {}
    for customers in found.values():
        for customer in customers:
            count[customer] = count.get(customer, 0) + 1
    kept: ByGuide = {}
    for guide, customers in found.items():
        mine = [c for c in customers if count[c] == 1 or guide == second(c)]
        if mine:
            kept[guide] = mine
    return kept


def _filter(audience: Audience) -> audiences.AudienceFilter:
    return audiences.AudienceFilter(tags_any=audience.tags_any, tags_all=audience.tags_all,
                                    tags_none=audience.tags_none, stores=audience.stores,
                                    guides=audience.guides)


PATHS = {"old": old_path, "pages": pages_path, "new": new_path}


async def measure(path: Callable[[Database, Audience], Awaitable[ByGuide]], db: Database,
                  audience: Audience) -> tuple[float, float, ByGuide]:
    """(seconds, peak MB of Python memory under tracemalloc, the result)."""
    started = time.perf_counter()
    found = await path(db, audience)
    wall = time.perf_counter() - started
    del found
    tracemalloc.start()
    found = await path(db, audience)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return wall, peak, found


async def main(customers: int, runs: int, db_url: str | None, analyze: bool,
               paths: list[str]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-drop-audience-"))
    url = db_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    try:
        began = time.perf_counter()
        await seed(url, customers, analyze)
        print(f"seeded {customers:,} customers, {GUIDES} guides, database {url.split(':')[0]} "
              f"in {time.perf_counter() - began:.1f} s (not timed)")
        db = Database(url)
        audience = Audience(tags_any=(TARGET,))
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        reference: ByGuide | None = None
        for run in range(runs):
            for name in paths:
                path = PATHS[name]
                wall, peak, found = await measure(path, db, audience)
                results[name].append((wall, peak))
                size = sum(len(v) for v in found.values())
                print(f"  run {run + 1} {name}: {wall:.2f} s, peak {peak:.1f} MB, "
                      f"{size:,} relations over {len(found)} guides")
                if reference is None:
                    reference = _once(found)
                elif _once(found) != reference:
                    raise SystemExit(f"{name} found other relations than {paths[0]}")
        walls = {n: statistics.median(w for w, _ in r) for n, r in results.items()}
        peaks = {n: statistics.median(p for _, p in r) for n, r in results.items()}
        print("median " + ", ".join(f"{n} {walls[n]:.2f} s / {peaks[n]:.1f} MB" for n in paths)
              + "".join(f"; new/{n}: time ×{walls['new'] / walls[n]:.2f}, memory "
                        f"×{peaks['new'] / peaks[n]:.2f}" for n in paths
                        if n != "new" and "new" in walls))
        if not analyze:  # autovacuum back on the seeded tables
            async with db.engine.connect() as conn:
                for model in _rows(0):
                    await conn.execute(text(f"ALTER TABLE {model.__table__.name} "  # type: ignore[attr-defined]
                                            "RESET (autovacuum_enabled)"))
                await conn.commit()
        await db.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--no-analyze", action="store_true",
                        help="PostgreSQL: a fresh database whose tables are never analysed "
                             "(autovacuum kept off them), as right after a bulk load")
    parser.add_argument("--paths", default="old,pages,new",
                        help="which of old (filtered in Python), pages (keyset pages of "
                             "5,000), new (one statement) to run, in turn; default all")
    args = parser.parse_args()
    chosen = [p for p in args.paths.split(",") if p]
    if not chosen or set(chosen) - set(PATHS):
        parser.error(f"--paths: a comma-separated choice of {', '.join(PATHS)}")
    asyncio.run(main(args.customers, args.runs, args.database_url, not args.no_analyze,
                     chosen))
