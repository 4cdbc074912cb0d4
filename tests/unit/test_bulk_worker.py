"""The bulk path's decision workers fail loudly and leave nothing half-written: a worker that
cannot read, or that dies, fails the run with BulkWorkerFailed, the run's transaction rolls
back, and no worker process is left behind. Real worker processes, real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from guidebot.commerce import bulk
from guidebot.commerce.attribution import Item
from guidebot.commerce.bulk_worker import BulkWorker, BulkWorkerFailed
from guidebot.commerce.schema import CustomerRef, PaidOrder
from guidebot.db.engine import Database
from guidebot.db.models_commerce import Order
from guidebot.services import build_services
from guidebot.settings import load_settings
from tests.support import commerce as commerce_support
from tests.support.stack import write_config

migrated = commerce_support.migrated  # the fixture
T0 = datetime(2026, 11, 3, tzinfo=UTC)
SIZES = bulk.Sizes(chunk=4, piece=2, first_piece=1, workers=2)


def _orders(count: int) -> list[PaidOrder]:
    return [PaidOrder(f"W{n}", T0 + timedelta(minutes=n), CustomerRef(f"wm{n % 5}", None, None),
                      "", "S01", (Item("SKU1", "beauty", 10_000 + n),)) for n in range(count)]


async def _run(url: str, folder: Path, spawn: Any, monkeypatch: pytest.MonkeyPatch
               ) -> tuple[BaseException | None, int, list[BulkWorker]]:
    settings = load_settings(write_config(folder, url))
    tenant = settings.tenant("acme")
    db = Database(url)
    services = build_services(settings, db)
    started: list[BulkWorker] = []

    async def tracked(address: tuple[str, str]) -> BulkWorker:
        worker = await spawn(address)
        started.append(worker)
        return worker

    monkeypatch.setattr(BulkWorker, "spawn", staticmethod(tracked))
    failure: BaseException | None = None
    try:
        try:
            await bulk.record_many(db, tenant, _orders(12), services.commerce.clock,
                                   worker=True, sizes=SIZES)
        except BulkWorkerFailed as exc:
            failure = exc
        async with db.read() as s:
            stored = (await s.execute(select(func.count()).select_from(Order))).scalar_one()
        return failure, int(stored), started
    finally:
        await services.close()
        await db.dispose()


def test_a_worker_that_cannot_read_fails_the_run_and_nothing_is_stored(
        migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_spawn = BulkWorker.spawn

    async def unreadable(address: tuple[str, str]) -> BulkWorker:
        if address[0] == "sqlite":  # a database file that does not exist, in a missing folder
            return await real_spawn(("sqlite", str(tmp_path / "missing" / "none.db")))
        return await real_spawn((address[0], address[1] + "_missing"))  # no such database

    failure, stored, started = asyncio.run(_run(migrated, tmp_path, unreadable, monkeypatch))
    assert isinstance(failure, BulkWorkerFailed)
    assert "Traceback" in str(failure)  # the worker's own traceback comes back
    assert stored == 0
    assert started and all(w._process.returncode is not None for w in started)


def test_a_worker_that_dies_fails_the_run_and_nothing_is_stored(
        migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_spawn = BulkWorker.spawn
    spawned = 0

    async def dying(address: tuple[str, str]) -> BulkWorker:
        nonlocal spawned
        worker = await real_spawn(address)
        spawned += 1
        if spawned == 2:  # the second worker is killed before it answers anything
            worker._process.kill()
            await worker._process.wait()
        return worker

    failure, stored, started = asyncio.run(_run(migrated, tmp_path, dying, monkeypatch))
    assert isinstance(failure, BulkWorkerFailed)
    assert "ended" in str(failure)
    assert stored == 0
    assert len(started) == 2 and all(w._process.returncode is not None for w in started)


def test_the_same_orders_through_workers_are_recorded_once(
        migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failure, stored, started = asyncio.run(
        _run(migrated, tmp_path, BulkWorker.spawn, monkeypatch))
    assert failure is None
    assert stored == 12
    assert len(started) == 2 and all(w._process.returncode == 0 for w in started)
