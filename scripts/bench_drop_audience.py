"""Drop audience benchmark: the relations a 群发 drop to a tag audience reaches, resolved the
way the code before did it (every live relation and every customer's tag names of the tenant
read into Python, filtered there) against the way it does now (the audience filtered in SQL,
the matching relations read a page at a time in (guide, customer) order).

Seeded, not timed: N customers over 200 guides in 20 stores, one relation each and a second
guide for every 20th customer, two corp tags per customer out of 30 (the audience's tag on
every 10th customer), one in 100 opted out. Timed: the audience `tags_any = [that tag]`
resolved into each guide's customers (what `_fire` builds its tasks from), old and new run
alternately; each run's wall time, then the same run again under tracemalloc for its peak of
Python memory. Both must find the same relations.

    python scripts/bench_drop_audience.py [--customers 200000] [--runs 3] [--database-url URL]

A PostgreSQL database given by URL is migrated; its rows of the tenant "bench" are replaced,
and the seeded tables analysed (as autovacuum would).
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

from sqlalchemy import delete, insert, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from guidebot.content.sop_spec import Audience  # noqa: E402
from guidebot.db.engine import Database  # noqa: E402
from guidebot.db.migrate import upgrade_async  # noqa: E402
from guidebot.db.models import CorpTag, Customer, CustomerTag, Follow, Guide, Store, Tenant  # noqa: E402
from guidebot.db.models_kf import OptOut  # noqa: E402
from guidebot.db.repo import audiences  # noqa: E402

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


async def seed(url: str, customers: int) -> None:
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
    async with db.write() as s:
        for model in reversed(list(rows)):
            await s.execute(delete(model.__table__).where(  # type: ignore[attr-defined]
                model.__table__.c["id" if model is Tenant else "tenant"] == "bench"))  # type: ignore[attr-defined]
    for model, items in rows.items():
        for start in range(0, len(items), CHUNK):
            async with db.write() as s:
                await s.execute(insert(model.__table__), items[start:start + CHUNK])  # type: ignore[attr-defined]
    # what autovacuum does to a table that grew: without statistics the planner takes a
    # nested loop for the audience's page that runs for minutes
    async with db.engine.connect() as conn:
        for model in rows:
            await conn.execute(text(f"ANALYZE {model.__table__.name}"))  # type: ignore[attr-defined]
        await conn.commit()
    await db.dispose()


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


# -- the code now: guidebot/sop/drops.py `_relations` (no segment, so no segment read)


async def new_path(db: Database, audience: Audience) -> ByGuide:
    wanted = audiences.AudienceFilter(tags_any=audience.tags_any, tags_all=audience.tags_all,
                                      tags_none=audience.tags_none, stores=audience.stores,
                                      guides=audience.guides)
    by_guide: ByGuide = {}
    after: tuple[str, str] | None = None
    while True:
        async with db.read() as s:
            rows = await audiences.page(s, tenant="bench", audience=wanted, after=after,
                                        limit=PAGE)
        for guide, customer in rows:
            by_guide.setdefault(guide, []).append(customer)
        if len(rows) < PAGE:
            return by_guide
        after = rows[-1]


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


async def main(customers: int, runs: int, db_url: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-drop-audience-"))
    url = db_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    try:
        began = time.perf_counter()
        await seed(url, customers)
        print(f"seeded {customers:,} customers, {GUIDES} guides, database {url.split(':')[0]} "
              f"in {time.perf_counter() - began:.1f} s (not timed)")
        db = Database(url)
        audience = Audience(tags_any=(TARGET,))
        results: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        reference: ByGuide | None = None
        for run in range(runs):
            for name, path in (("old", old_path), ("new", new_path)):
                wall, peak, found = await measure(path, db, audience)
                results[name].append((wall, peak))
                size = sum(len(v) for v in found.values())
                print(f"  run {run + 1} {name}: {wall:.2f} s, peak {peak:.1f} MB, "
                      f"{size:,} relations over {len(found)} guides")
                if reference is None:
                    reference = found
                elif found != reference:
                    raise SystemExit("the old and the new path found different relations")
        old_wall = statistics.median(w for w, _ in results["old"])
        new_wall = statistics.median(w for w, _ in results["new"])
        old_peak = statistics.median(p for _, p in results["old"])
        new_peak = statistics.median(p for _, p in results["new"])
        print(f"median old {old_wall:.2f} s / {old_peak:.1f} MB, new {new_wall:.2f} s / "
              f"{new_peak:.1f} MB: time ×{new_wall / old_wall:.2f}, memory "
              f"×{new_peak / old_peak:.2f}")
        await db.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.runs, args.database_url))
