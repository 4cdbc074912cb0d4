"""Exactly once: SOP steps survive a process dying after its claim or mid-call, two
processes on one PostgreSQL share 10,000 due steps, and edits never send twice."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.models import OutboxItem
from guidebot.db.models_sop import SopEnrollment
from guidebot.db.repo import sop_plan, sop_tasks
from guidebot.sandbox import SANDBOX_KEY, Sandbox, create_sandbox_app
from guidebot.services import Services, build_services
from guidebot.settings import Settings, load_settings
from guidebot.sop.dispatcher import outbox_key
from tests.support.stack import FAST_BACKOFF, ROOT, write_config

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near


def _library(tmp_path: Path, name: str, sop_file: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(ROOT / "content_library", folder)
    shutil.copy(DATA / sop_file, folder / "sops" / "flash.toml")
    return folder


async def _world(aiohttp_server: Any, tmp_path: Path, db_url: str,
                 library: Path) -> tuple[Settings, Sandbox]:
    settings = load_settings(write_config(tmp_path, db_url, library))
    sandbox_app = create_sandbox_app(settings)
    server = await aiohttp_server(sandbox_app)
    base = str(server.make_url("/cgi-bin/"))
    from dataclasses import replace

    settings = replace(settings, tenants={t: replace(v, api_base=base)
                                          for t, v in settings.tenants.items()})
    await upgrade_async(db_url)
    return settings, sandbox_app[SANDBOX_KEY]


def _process(settings: Settings, library: Path | None = None,
             now: datetime = T0) -> Services:
    """One guidebot process: its own engine and connection pool, its own services."""
    from dataclasses import replace

    if library is not None:
        settings = replace(settings, content_library=library)
    services = build_services(settings, Database(settings.database_url), backoff=FAST_BACKOFF)
    services.sop.clock = lambda: now
    return services


async def _stop(services: Services) -> None:
    await services.close()
    await services.db.dispose()


async def _enroll(services: Services, count: int, guides: int) -> None:
    await services.sop.ready("acme")
    rows = [{"tenant": "acme", "sop_id": "flash", "external_userid": f"wmC{i:05d}",
             "guide": f"guide{i % guides}", "store_id": None, "trigger_at": T0,
             "status": "active", "reason": "", "version": 1, "next_step": 0,
             "next_at": T0 + timedelta(minutes=1), "last_at": None, "created_at": T0,
             "updated_at": T0} for i in range(count)]
    async with services.db.write() as s:
        for start in range(0, count, 2000):
            await sop_plan.insert_enrollments(s, rows[start:start + 2000])


def _recipients(sandbox: Sandbox) -> Counter[str]:
    calls = sandbox.calls("acme", "externalcontact/add_msg_template")
    return Counter(e for c in calls for e in c["body"]["external_userid"])


async def _sixty_due(aiohttp_server: Any, tmp_path: Path, db_url: str
                     ) -> tuple[Settings, Sandbox, Services]:
    """60 customers of 3 guides enrolled in an SOP whose first step is due at once."""
    library = _library(tmp_path, "lib", "flash.toml")
    settings, sandbox = await _world(aiohttp_server, tmp_path, db_url, library)
    first = _process(settings, now=T0 + timedelta(minutes=2))
    await _enroll(first, 60, guides=3)
    return settings, sandbox, first


async def test_killed_after_claiming_every_step_is_delivered_once_after_restart(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    settings, sandbox, first = await _sixty_due(aiohttp_server, tmp_path, db_url)
    assert await first.sop.plan("acme") == 60  # due at once: born in their guides' tasks
    async with first.db.read() as s:
        assert await sop_plan.count_steps(s, tenant="acme") == {"queued": 60}
    async with first.db.write() as s:  # the pass claims its tasks … and the process dies
        claimed = await sop_tasks.claim_tasks(s, tenant="acme", status="queued", limit=100,
                                              now=T0 + timedelta(minutes=2))
    assert len(claimed) == 3
    await _stop(first)
    assert sandbox.calls("acme", "externalcontact/add_msg_template") == []

    second = _process(settings, now=T0 + timedelta(minutes=4))
    second.sop.dispatcher.stale_after = timedelta(minutes=1)  # the dead process's claim has aged
    await second.sop.tick("acme")
    await second.sop.tick("acme")
    received = _recipients(sandbox)
    assert len(received) == 60 and set(received.values()) == {1}
    assert len(sandbox.calls("acme", "externalcontact/add_msg_template")) == 3
    await _stop(second)


async def test_killed_after_registering_the_calls_every_step_is_delivered_once(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    settings, sandbox, first = await _sixty_due(aiohttp_server, tmp_path, db_url)

    class Died(Exception):
        pass

    async def die(*args: Any, **kwargs: Any) -> None:
        raise Died  # the tasks are claimed and their outbox rows registered; no call made

    first.outbox.attempt_many = die  # type: ignore[method-assign]
    with pytest.raises(Died):
        await first.sop.tick("acme")
    await _stop(first)
    assert sandbox.calls("acme", "externalcontact/add_msg_template") == []

    second = _process(settings, now=T0 + timedelta(minutes=10))
    async with second.db.write() as s:  # five minutes later, the rows are stale
        await s.execute(update(OutboxItem).values(updated_at=T0 - timedelta(hours=1)))
    assert await second.outbox.retry_due(second.calls) == 3
    await second.sop.tick("acme")
    received = _recipients(sandbox)
    assert len(received) == 60 and set(received.values()) == {1}
    assert len(sandbox.calls("acme", "externalcontact/add_msg_template")) == 3
    await _stop(second)


async def test_a_wave_planned_over_several_passes_is_one_task_per_guide(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    library = _library(tmp_path, "lib", "flash.toml")
    settings, sandbox = await _world(aiohttp_server, tmp_path, db_url, library)
    services = _process(settings, now=T0 + timedelta(minutes=2))
    await _enroll(services, 30, guides=3)  # guides interleaved across enrollment ids
    assert await services.sop.plan("acme", limit=7) == 30  # five passes
    await services.sop.dispatcher.run("acme")
    sends = sandbox.calls("acme", "externalcontact/add_msg_template")
    assert sorted((c["body"]["sender"], len(c["body"]["external_userid"])) for c in sends) == [
        ("guide0", 10), ("guide1", 10), ("guide2", 10)]
    async with services.db.read() as s:
        rows = await sop_tasks.list_tasks(s, tenant="acme", guide=None, status=None)
    assert len([t for t, _ in rows if t.kind == "guide_task"]) == 3
    await _stop(services)


async def test_killed_after_the_wecom_call_the_task_is_adopted_not_resent(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    library = _library(tmp_path, "lib", "flash.toml")
    settings, sandbox = await _world(aiohttp_server, tmp_path, db_url, library)
    for i in range(4):  # the customers really are this guide's (the sandbox knows them)
        await sandbox.simulate_add_contact("acme", userid="guide0",
                                           external_userid=f"wmC{i:05d}", deliver=False)
    first = _process(settings, now=T0 + timedelta(minutes=2))
    await _enroll(first, 4, guides=1)

    class Died(Exception):
        pass

    def die(*args: Any, **kwargs: Any) -> None:
        raise Died  # WeCom created the task; the process dies before recording it

    first.sop._executors._sent = die  # type: ignore[method-assign]
    with pytest.raises(Died):
        await first.sop.tick("acme")
    await _stop(first)
    assert len(sandbox.calls("acme", "externalcontact/add_msg_template")) == 1

    second = _process(settings, now=T0 + timedelta(minutes=2))
    async with second.db.write() as s:  # five minutes later, the outbox row is stale
        await s.execute(update(OutboxItem).values(updated_at=T0 - timedelta(hours=1)))
    assert await second.outbox.retry_due(second.calls) == 1
    await second.sop.tick("acme")
    assert len(sandbox.calls("acme", "externalcontact/add_msg_template")) == 1
    assert len(sandbox.calls("acme", "externalcontact/get_groupmsg_list_v2")) == 1
    async with second.db.read() as s:
        rows = await sop_tasks.list_tasks(s, tenant="acme", guide=None, status=None)
    task, delivery = next((t, o) for t, o in rows if t.kind == "guide_task")
    assert task.status == "sent" and task.msgid
    assert delivery is not None and delivery.key == outbox_key(task.id or 0)
    assert delivery.status == "done"
    await _stop(second)


async def test_two_processes_on_one_postgresql_deliver_10000_steps_once(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer process by design; this is the PostgreSQL case")
    library = _library(tmp_path, "lib", "flash.toml")
    settings, sandbox = await _world(aiohttp_server, tmp_path, db_url, library)
    now = T0 + timedelta(minutes=2)
    one, two = _process(settings, now=now), _process(settings, now=now)
    await _enroll(one, 10_000, guides=20)
    for services in (one, two):
        services.sop.dispatcher._claim_limit = 700  # many small claims, interleaved

    async def loop(services: Services) -> None:
        for _ in range(200):
            await services.sop.plan("acme", limit=500)
            if not await services.sop.dispatcher.run("acme"):
                async with services.db.read() as s:
                    if (await sop_plan.count_steps(s, tenant="acme")).get("planned", 0) == 0 \
                            and not await _due_enrollments(s):
                        return

    await asyncio.gather(loop(one), loop(two))
    received = _recipients(sandbox)
    assert len(received) == 10_000
    assert set(received.values()) == {1}
    async with one.db.read() as s:
        counts = await sop_plan.count_steps(s, tenant="acme")
    assert sum(counts.values()) == 10_000 and counts.get("planned", 0) == 0
    await _stop(one)
    await _stop(two)


async def _due_enrollments(s: Any) -> int:
    from sqlalchemy import func, select

    stmt = select(func.count()).select_from(SopEnrollment).where(
        SopEnrollment.status == "active", SopEnrollment.next_at <= T0 + timedelta(minutes=2))
    return int((await s.execute(stmt)).scalar_one())


async def test_an_edit_is_a_new_version_for_unmaterialised_steps_never_a_second_send(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    settings, sandbox = await _world(aiohttp_server, tmp_path, db_url,
                                     _library(tmp_path, "v1", "flash.toml"))
    for i in range(3):
        await sandbox.simulate_add_contact("acme", userid="guide0",
                                           external_userid=f"wmC{i:05d}", deliver=False)
    v1 = _process(settings, now=T0 + timedelta(minutes=2))
    await _enroll(v1, 3, guides=1)
    await v1.sop.tick("acme")
    await _stop(v1)
    assert len(sandbox.calls("acme", "externalcontact/add_msg_template")) == 1

    v2 = _process(settings, _library(tmp_path, "v2", "flash_v2.toml"))
    assert (await v2.sop.ready("acme"))["flash"].version == 2
    for offset in (timedelta(minutes=2), timedelta(days=1, minutes=2)):
        v2.sop.clock = lambda o=offset: T0 + o
        await v2.sop.tick("acme")
    # step 0 was sent under v1 and is not sent again; step 1 moved from +1d to +2d
    assert len(sandbox.calls("acme", "externalcontact/add_msg_template")) == 1
    v2.sop.clock = lambda: T0 + timedelta(days=2, minutes=2)
    await v2.sop.tick("acme")
    sends = sandbox.calls("acme", "externalcontact/add_msg_template")
    assert len(sends) == 2 and "回归礼" in sends[1]["body"]["text"]["content"]
    await _stop(v2)

    off = _process(settings, _library(tmp_path, "off", "flash_disabled.toml"),
                   now=T0 + timedelta(days=3, minutes=2))
    await off.sop.tick("acme")
    assert len(sandbox.calls("acme", "externalcontact/add_msg_template")) == 2
    async with off.db.read() as s:
        steps = await sop_plan.customer_steps(s, tenant="acme", external_userid="wmC00000")
        enrollment = await sop_plan.get_enrollment(s, enrollment_id=steps[0].enrollment_id)
    assert [(st.step_index, st.version, st.status) for st in steps] == [
        (0, 1, "sent"), (1, 2, "sent")]
    assert enrollment is not None and enrollment.status == "stopped"
    await _stop(off)


async def test_a_steps_add_tags_are_marked_once_per_customer_reached(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    settings, sandbox = await _world(aiohttp_server, tmp_path, db_url,
                                     _library(tmp_path, "tags", "flash_tags.toml"))
    for i in range(2):
        await sandbox.simulate_add_contact("acme", userid="guide0",
                                           external_userid=f"wmC{i:05d}", deliver=False)
    services = _process(settings, now=T0 + timedelta(minutes=2))
    await _enroll(services, 2, guides=1)
    await services.sop.tick("acme")
    await services.sop.tick("acme")
    marks = sandbox.calls("acme", "externalcontact/mark_tag")
    assert sorted(c["body"]["external_userid"] for c in marks) == ["wmC00000", "wmC00001"]
    assert all(c["body"]["userid"] == "guide0" and len(c["body"]["add_tag"]) == 1
               and c["errcode"] == 0 for c in marks)
    await _stop(services)
