"""Session-level commerce reads and the bulk transaction for bulk attribution.

The driver-level queries (rows as tuples, no ORM) are in commerce_driver; this module opens
the bulk transaction on a session and reads what is small and read once per run (identities,
profiles, rule versions), and tells a bulk worker process how to reach the same database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Customer
from guidebot.db.models_commerce import Identity, RuleVersion
from guidebot.db.repo._dialect import is_postgres
from guidebot.db.repo.commerce_driver import (
    BULK_CACHE_KIB,
    BulkConnection,
    InlineSqlite,
    batches,
)


async def bulk_connection(session: AsyncSession, *, tenant: str) -> BulkConnection:
    """Start the bulk transaction so that nothing else writes until it commits: on PostgreSQL
    the tenant's ledger lock; on SQLite BEGIN IMMEDIATE (the database write lock) and a
    128 MB page cache for this connection (the 2 MB default makes random inserts into
    million-row indexes I/O bound)."""
    postgres = is_postgres(session)
    if postgres:  # through the session: this also opens its transaction on the connection
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                              {"k": f"guidebot-ledger:{tenant}"})
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if isinstance(driver, sqlite3.Connection):  # an inline transaction (the order intake's
        driver = InlineSqlite(driver)  # small batches): the default page cache will do
    elif not postgres:
        await driver.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    if not postgres and not driver.in_transaction:
        await driver.execute("BEGIN IMMEDIATE")
    return BulkConnection(driver, postgres)


async def identities(session: AsyncSession, *, tenant: str, kind: str,
                     values: Sequence[str]) -> dict[str, str]:
    """Stored identities of one kind (unionid | openid): value → external_userid."""
    found: dict[str, str] = {}
    for batch in batches(values):
        stmt = select(Identity.value, Identity.external_userid).where(
            Identity.tenant == tenant, Identity.kind == kind,
            Identity.value.in_(batch))  # type: ignore[attr-defined]
        found.update((v, e) for v, e in (await session.execute(stmt)).all())
    return found


async def profile_unionids(session: AsyncSession, *, tenant: str,
                           unionids: Sequence[str]) -> dict[str, str]:
    """unionid → external_userid from customer profiles (commerce_links.lookup_identity's
    fallback; of two customers with one unionid, the first by external_userid)."""
    found: dict[str, str] = {}
    for batch in batches(unionids):
        stmt = (select(Customer.unionid, Customer.external_userid)
                .where(Customer.tenant == tenant,
                       Customer.unionid.in_(batch))  # type: ignore[union-attr]
                .order_by(Customer.external_userid))
        for unionid, external in (await session.execute(stmt)).all():
            if unionid is not None:
                found.setdefault(unionid, external)
    return found


async def rule_versions(session: AsyncSession, *, tenant: str) -> Sequence[RuleVersion]:
    stmt = (select(RuleVersion).where(RuleVersion.tenant == tenant)
            .order_by(RuleVersion.effective_at, RuleVersion.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


def reader_address(url: str) -> tuple[str, str] | None:
    """How another process opens the same database (commerce_driver.open_reader), or None
    when it cannot (an in-memory or URI-style SQLite database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return "postgresql", dsn
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") \
            or database.startswith("file:") or parsed.query:
        return None
    return "sqlite", database
