"""Two real guidebot processes (`guidebot serve`, scheduler jobs on) on one PostgreSQL and one
sandbox: 10,000 SOP steps due at once are each delivered exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from guidebot.content.library import load_library
from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.models_sop import SopStep, SopTask
from guidebot.db.repo import sop_plan
from guidebot.db.types import utcnow
from guidebot.sandbox import SANDBOX_KEY, create_sandbox_app
from guidebot.settings import load_settings
from guidebot.sop import versions
from tests.conftest import PG_ENV
from tests.support.processes import Served, free_port, serve, write_config
from tests.support.stack import ROOT, reset_postgres

CUSTOMERS, GUIDES = 10_000, 400  # 400 tasks: more than one pass of either process claims
HANG_GUARD_S = 120  # not a timing assertion: only how long to wait before giving up
NOWHERE = "http://127.0.0.1:9"  # public_url: nothing here calls back

SOP = """
id = "pair"
title = "双进程"
enabled = true
quiet_hours = "00:00-00:00"  # none: due whatever the time of day

[trigger]
on = "manual"

[[steps]]
at = "+1m"
channel = "guide_task"
message = "sop_care_tips"
"""

def _customer(i: int) -> tuple[str, str]:
    return f"wmPAIR{i:06d}", f"guide{i % GUIDES:03d}"


async def _enroll(db: Database, library: Path) -> None:
    await versions.sync(db, "acme", load_library(library).sops)
    trigger = utcnow() - timedelta(minutes=5)  # step "+1m": due at once, in both processes
    rows = []
    for i in range(CUSTOMERS):
        customer, guide = _customer(i)
        rows.append({"tenant": "acme", "sop_id": "pair", "external_userid": customer,
                     "guide": guide, "store_id": None, "trigger_at": trigger,
                     "status": "active", "reason": "", "version": 1, "next_step": 0,
                     "next_at": trigger + timedelta(minutes=1), "last_at": None,
                     "created_at": trigger, "updated_at": trigger})
    async with db.write() as s:  # one commit: every step becomes due at the same moment
        await sop_plan.insert_enrollments(s, rows)


async def _settled(db: Database) -> bool:
    """Every step materialised and every guide task sent."""
    async with db.read() as s:
        steps = (await s.execute(select(func.count()).select_from(SopStep))).scalar_one()
        open_tasks = (await s.execute(select(func.count()).select_from(SopTask).where(
            SopTask.kind == "guide_task",
            SopTask.status.in_(("queued", "sending"))))).scalar_one()  # type: ignore[attr-defined]
    return int(steps) == CUSTOMERS and int(open_tasks) == 0


async def test_two_guidebot_processes_deliver_10000_due_steps_exactly_once(
        aiohttp_server: Any, tmp_path: Path) -> None:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"two processes share one PostgreSQL (SQLite has one writer by design): "
                    f"set {PG_ENV} to run it")
    await reset_postgres(url)
    await upgrade_async(url)
    library = tmp_path / "library"
    shutil.copytree(ROOT / "content_library", library)
    (library / "sops" / "pair.toml").write_text(SOP, encoding="utf-8")
    bootstrap = tmp_path / "bootstrap.toml"  # the sandbox needs the tenants before its URL
    write_config(bootstrap, db_url=url, api_base="http://x/", public_url=NOWHERE,
                 library=library)
    sandbox_app = create_sandbox_app(load_settings(bootstrap))
    sandbox_server = await aiohttp_server(sandbox_app)
    sandbox = sandbox_app[SANDBOX_KEY]
    config = tmp_path / "config.toml"
    write_config(config, db_url=url, api_base=str(sandbox_server.make_url("/cgi-bin/")),
                 public_url=NOWHERE, library=library)

    db = Database(url)
    processes: list[Served] = []
    logs = [tmp_path / f"guidebot{n}.log" for n in (1, 2)]
    async with aiohttp.ClientSession() as http:
        follows = [dict(zip(("external_userid", "userid"), _customer(i), strict=True))
                   for i in range(CUSTOMERS)]
        async with http.post(sandbox_server.make_url("/_sandbox/acme/seed"),
                             json={"follows": follows}) as resp:
            assert resp.status == 200, await resp.text()
        try:
            ports = [free_port(), free_port()]
            for port, log in zip(ports, logs, strict=True):
                processes.append(serve(config, port, log, migrate=False))
            for process in processes:
                await process.healthy(http)
            await _enroll(db, library)  # both processes' dispatch jobs now race for them
            deadline = time.monotonic() + HANG_GUARD_S
            while not await _settled(db):
                if time.monotonic() > deadline:
                    tails = "\n".join(log.read_text()[-2000:] for log in logs)
                    pytest.fail(f"not delivered within {HANG_GUARD_S} s:\n{tails}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(3)  # a further dispatch pass in each process: nothing more
        finally:
            for process in processes:
                process.stop()

    sends = sandbox.calls("acme", "externalcontact/add_msg_template")
    received = Counter(e for call in sends for e in call["body"]["external_userid"])
    assert len(received) == CUSTOMERS
    assert set(received.values()) == {1}  # every customer in exactly one add_msg_template
    assert all(call["errcode"] == 0 for call in sends)
    for call in sends:  # each task went to its guide's own customers only
        assert {_customer(int(e[6:]))[1] for e in call["body"]["external_userid"]} \
            == {call["body"]["sender"]}
    async with db.read() as s:
        tasks = list((await s.execute(select(SopTask).where(
            SopTask.kind == "guide_task"))).scalars())
    assert len(sends) == len(tasks)  # no task sent twice
    templates = sandbox.tenant("acme").templates
    assert sorted(t.msgid for t in tasks) == sorted(templates)  # each task its own 群发
    await db.dispose()
