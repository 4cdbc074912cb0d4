"""SQLite work on the event loop's own thread, for the urgent lanes.

aiosqlite runs every statement on a worker thread: several thread hops per statement, and
under load each hop waits for the GIL. A welcome's few short transactions spend more time
hopping than in SQLite. In the urgent lanes (guidebot/lanes.py) the database hands out an
`InlineSession` instead: the `AsyncSession` methods the repo layer uses, over a synchronous
SQLAlchemy session whose statements run at once on the loop thread (WAL keeps them short;
the single-writer lock is held as before). Events' follow-ups run inline too, in the last lane
of the lock: on aiosqlite their transactions held the writer for a hop per statement, each
hop a turn of a busy loop, while acknowledgements waited. Jobs and bulk work
(`lanes.background()`) keep aiosqlite, so a long statement of theirs never holds up the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session


class InlineConnection:
    """The `AsyncConnection` methods the repo layer uses, over a synchronous connection."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection
        self.dialect = connection.dialect
        self.engine = connection.engine

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_connection.execute(*args, **kwargs)

    async def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_connection.exec_driver_sql(*args, **kwargs)

    async def get_raw_connection(self) -> Any:
        return self.sync_connection.connection

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(self.sync_connection, *args, **kwargs)


class InlineSession:
    """The `AsyncSession` methods the repo layer uses; every await completes at once."""

    def __init__(self, session: Session) -> None:
        self.sync_session = session
        self.bind = session.get_bind()

    def get_bind(self) -> Any:
        return self.bind

    @property
    def info(self) -> dict[Any, Any]:
        return self.sync_session.info

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalars(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.get(*args, **kwargs)

    def add(self, instance: Any) -> None:
        self.sync_session.add(instance)

    def add_all(self, instances: Any) -> None:
        self.sync_session.add_all(instances)

    async def delete(self, instance: Any) -> None:
        self.sync_session.delete(instance)

    async def flush(self) -> None:
        self.sync_session.flush()

    def expunge(self, instance: Any) -> None:
        self.sync_session.expunge(instance)

    def expunge_all(self) -> None:
        self.sync_session.expunge_all()

    async def connection(self) -> InlineConnection:
        return InlineConnection(self.sync_session.connection())
