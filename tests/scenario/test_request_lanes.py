"""On SQLite the hot routes (callbacks, orders and their evidence, visits) do their database
work inline on the event loop's thread, and every other route on aiosqlite's thread: a
console page, the admin API or a /metrics scrape reading a large table must not hold up
acknowledgements (guidebot/web/request_lanes.py). Each statement is recorded with the engine
that ran it: the inline engine runs on the loop's thread, the async engine's statements on
aiosqlite's. SQLite only: PostgreSQL is never inline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from guidebot.db.repo.metrics import OUTBOX_BY_STATE
from tests.support.console import Console, seed, upkeep
from tests.support.stack import Stack, start_stack
from tests.support.wecom import add_contact_xml


class Recorder:
    """(engine, statement) of every statement from now on."""

    def __init__(self, stack: Stack) -> None:
        db = stack.runtime.services.db
        self.ran: list[tuple[str, str]] = []
        for name, engine in (("loop", db._inline()), ("aiosqlite", db.engine.sync_engine)):
            event.listen(engine, "before_cursor_execute", self._listener(name))

    def _listener(self, name: str) -> Any:
        def listener(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            self.ran.append((name, " ".join(statement.split())))
        return listener

    def engines(self, *tables: str, counts: bool = False) -> set[str]:
        """The engines that ran statements naming any of these tables (`counts`: only the
        SELECTs that count, as /metrics reads; the jobs running meanwhile, such as the
        inbox's claim of a due row on the loop, are other statements)."""
        return {name for name, statement in self.ran
                if any(f" {t} " in f"{statement} " for t in tables)
                and (not counts or (statement.startswith("SELECT")
                                    and "count(" in statement))}


async def test_console_api_and_metrics_read_off_the_loop_and_callbacks_store_on_it(
        aiohttp_server: Any, tmp_path: Path, sqlite_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    try:
        await seed(stack)
        assert await upkeep(stack) > 0
        await stack.runtime.drain()
        recorder = Recorder(stack)
        bearer = {"Authorization": f"Bearer {stack.tenant().admin_token}"}
        console = Console(stack)
        try:
            for path, tables in (("/console/acme/", ("stats_daily", "stats_layer_adds")),
                                 ("/console/acme/guides", ("stats_daily",)),
                                 ("/console/acme/customers", ("customers",))):
                recorder.ran.clear()
                status, _, _ = await console.get(path, headers=bearer)
                assert status == 200, path
                assert recorder.engines(*tables) == {"aiosqlite"}, (path, recorder.ran)
        finally:
            await console.http.close()
        recorder.ran.clear()
        status, body = await stack.admin("/metrics/overview")
        assert status == 200, body
        assert recorder.engines("stats_daily") == {"aiosqlite"}, recorder.ran
        recorder.ran.clear()
        async with stack.http.get(f"{stack.bot_url}/metrics") as resp:
            assert resp.status == 200
        assert recorder.engines("outbox", "inbox", counts=True) == {"aiosqlite"}, recorder.ran
        # One order's evidence, which store backends poll at order rates: keyed reads, inline.
        recorder.ran.clear()
        status, body = await stack.admin("/orders/CO-1")
        assert status == 200, body
        assert recorder.engines("commerce_orders") == {"loop"}, recorder.ran

        recorder.ran.clear()
        xml = add_contact_xml(corp_id=stack.tenant().corp_id, guide="lina",
                              external_userid="wmLANES0001", welcome_code="WC-LANES-1")
        assert await stack.post_callback(xml) == 200
        stored = [name for name, statement in recorder.ran
                  if statement.startswith("INSERT INTO inbox")]
        assert stored == ["loop"], recorder.ran
        await stack.runtime.drain()
    finally:
        await stack.http.close()


async def test_the_outbox_is_counted_by_state_from_its_index_alone(
        aiohttp_server: Any, tmp_path: Path, sqlite_url: str) -> None:
    """/metrics counts outbox rows by tenant and state at every scrape: from the (status,
    tenant) index, not by reading every row and its payload."""
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    try:
        db = stack.runtime.services.db
        sql = str(OUTBOX_BY_STATE.compile(dialect=db.engine.dialect))
        async with db.read() as s:
            plan = [row[-1] for row in (await s.execute(text(f"EXPLAIN QUERY PLAN {sql}")))]
        assert plan == ["SCAN outbox USING COVERING INDEX ix_outbox_status_tenant"], plan
    finally:
        await stack.http.close()


def test_every_hot_route_is_a_route_of_the_app(tmp_path: Path, sqlite_url: str) -> None:
    """A hot route renamed without HOT_ROUTES would quietly move off the loop."""
    from guidebot.app import HOT_ROUTES, create_app
    from guidebot.settings import load_settings
    from tests.support.stack import write_config

    app = create_app(load_settings(write_config(tmp_path, sqlite_url)), start_jobs=False)
    canonical = {resource.canonical for resource in app.router.resources()}
    assert set(HOT_ROUTES) <= canonical, set(HOT_ROUTES) - canonical
