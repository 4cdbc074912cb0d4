"""The bulk path's decision worker: a process that reads and decides pieces while the bulk
transaction's process writes the previous ones (two cores: I/O and Python at once).

The parent starts it (`python -m guidebot.commerce.bulk_worker`) and talks to it over its stdin
and stdout in frames (an 8-byte length, then a pickle): `open` (how to reach the database),
`run` (the rule versions, the run's known identities), then per bulk transaction one `chunk`
(its terms) and its `piece`s (orders, packed, and on SQLite the first touch id the piece may
use); each piece is answered with its rows (bulk_decide.Piece) in order, an error with the
traceback. A run may use several workers, each deciding its own pieces.
The worker only reads, on a connection of its own (query_only on SQLite) and only while the
parent's bulk transaction holds its lock, so it sees what that transaction would see
(guidebot.commerce.bulk_decide). EOF on stdin ends it: it never outlives its parent's pipe.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from guidebot.commerce.attribution import Item
from guidebot.commerce.bulk_decide import Piece, Terms, Versions, decide_piece, touch_ids
from guidebot.commerce.resolver import KnownIdentities
from guidebot.commerce.schema import CustomerRef, PaidOrder
from guidebot.db.repo import commerce_driver as driver
from guidebot.errors import GuidebotError

_HEADER = 8
_READ_LIMIT = 1 << 24  # the parent buffers up to about this much of the worker's answers
_STOP_TIMEOUT_S = 30.0
Packed = tuple[list[Any], ...]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


class BulkWorkerFailed(GuidebotError):
    """The decision worker reported an error or ended without answering."""


def pack(orders: Sequence[PaidOrder]) -> Packed:
    """Orders as columns of plain values (paid_at as microseconds since the epoch when it is
    in UTC, as validated orders are): pickling these costs a fraction of the dataclasses."""
    refs = [o.customer for o in orders]
    items = [i for o in orders for i in o.items]
    return ([o.order_no for o in orders],
            [(o.paid_at - _EPOCH) // _MICRO if o.paid_at.tzinfo is UTC else o.paid_at
             for o in orders],
            [r.external_userid for r in refs], [r.unionid for r in refs],
            [r.openid for r in refs], [o.tracking for o in orders],
            [o.store_id for o in orders], [len(o.items) for o in orders],
            [i.sku for i in items], [i.category for i in items], [i.amount_fen for i in items],
            [i.quantity for i in items])


def unpack(packed: Packed) -> list[PaidOrder]:
    numbers, paid, external, unionid, openid, tracking, store, counts, *columns = packed
    items = list(map(Item, *columns))
    orders = []
    end = 0
    for n, count in enumerate(counts):
        at = paid[n]
        orders.append(PaidOrder(
            numbers[n], _EPOCH + timedelta(microseconds=at) if isinstance(at, int) else at,
            CustomerRef(external[n], unionid[n], openid[n]), tracking[n], store[n],
            tuple(items[end:end + count])))
        end += count
    return orders


class BulkWorker:
    """The parent's handle on a running worker."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def spawn(cls, address: tuple[str, str]) -> BulkWorker:
        """Start a worker and let it connect (the address may hold a password: it goes
        through the pipe, never the command line)."""
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "guidebot.commerce.bulk_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            limit=_READ_LIMIT)
        worker = cls(process)
        worker._send(("open", address))
        return worker

    def run(self, versions: Versions, identities: KnownIdentities) -> None:
        """What every piece of the run shares."""
        self._send(("run", versions.spec, identities))

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(_frame(message))  # buffered: never waits for the worker

    def chunk(self, terms: Terms) -> None:
        self._send(("chunk", terms))

    def piece(self, orders: Sequence[PaidOrder], first_touch_id: int | None) -> None:
        """Decide these orders; on SQLite their tracking touches are numbered from
        first_touch_id (None: from PostgreSQL's sequence)."""
        self._send(("piece", pack(orders), first_touch_id))

    async def result(self) -> Piece:
        """The answer to the oldest piece not yet answered."""
        assert self._process.stdout is not None
        try:
            size = int.from_bytes(await self._process.stdout.readexactly(_HEADER), "big")
            kind, payload = pickle.loads(await self._process.stdout.readexactly(size))
        except asyncio.IncompleteReadError:
            code = await self._process.wait()
            raise BulkWorkerFailed(f"the bulk decision worker ended (exit code {code}) "
                                   "without answering; its stderr has the details") from None
        if kind == "error":
            raise BulkWorkerFailed(f"the bulk decision worker failed:\n{payload}")
        assert isinstance(payload, Piece)
        return payload

    async def stop(self) -> None:
        """Let the worker finish and end (killed if it does not within a while)."""
        assert self._process.stdin is not None
        self._send(("stop",))
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


def _frame(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(body).to_bytes(_HEADER, "big") + body


def _read(stream: IO[bytes]) -> tuple[Any, ...] | None:
    header = stream.read(_HEADER)
    if len(header) < _HEADER:
        return None  # the parent closed the pipe
    body = stream.read(int.from_bytes(header, "big"))
    message = pickle.loads(body)
    assert isinstance(message, tuple)
    return message


async def _serve(inbox: IO[bytes], outbox: IO[bytes]) -> None:
    conn: driver.BulkConnection | None = None
    try:
        terms: Terms | None = None
        versions: Versions | None = None
        identities: KnownIdentities | None = None
        # Reading the pipe blocks the loop, which is idle between pieces (nothing else runs).
        while (message := _read(inbox)) is not None and message[0] != "stop":
            if message[0] == "open":
                conn = await driver.open_reader(message[1])
            elif message[0] == "run":
                versions, identities = Versions(message[1]), message[2]
            elif message[0] == "chunk":
                terms = message[1]
            else:
                assert conn and terms and versions and identities is not None
                piece = await decide_piece(conn, terms, versions, identities,
                                           unpack(message[1]), touch_ids(conn, message[2]))
                outbox.write(_frame(("piece", piece)))
                outbox.flush()
    except Exception:  # everything goes back to the parent, which raises it
        outbox.write(_frame(("error", traceback.format_exc())))
        outbox.flush()
        raise SystemExit(1) from None
    finally:
        if conn is not None:
            await driver.close_reader(conn)


def main() -> None:
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot corrupt a frame
    gc.disable()  # as the bulk path: millions of acyclic tuples, freed by refcounting
    asyncio.run(_serve(sys.stdin.buffer, outbox))


if __name__ == "__main__":
    main()

