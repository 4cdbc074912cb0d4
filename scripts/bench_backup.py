"""How long a SQLite backup holds up a writer in another process, by method.

    python scripts/bench_backup.py [--mb 60] [--dir /tmp]

A writer process commits one small row per transaction in a loop (WAL, synchronous=NORMAL,
as guidebot serve does) while this process copies the database three ways: the online
backup API in steps of 256 pages with 5 ms sleeps, the backup API in one step, and
VACUUM INTO. For each: whether the copy finished, how long it took, and the writer's
commits and slowest commit during it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path
from typing import Any


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _writer(path: Path, stop: Any, out: multiprocessing.Queue) -> None:
    conn = _connect(path)
    latencies: list[float] = []
    while not stop.is_set():
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (body) VALUES (?)", (os.urandom(200).hex(),))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - start)
        time.sleep(0.001)
    out.put(latencies)


def _paged(src: sqlite3.Connection, target: Path, deadline_s: float) -> bool:
    dest = sqlite3.connect(target)
    started = time.monotonic()
    finished = False

    def progress(_status: int, remaining: int, _total: int) -> None:
        if time.monotonic() - started > deadline_s:
            raise TimeoutError
        time.sleep(0.005)

    try:
        src.backup(dest, pages=256, progress=progress)
        finished = True
    except TimeoutError:
        pass
    dest.close()
    return finished


def _one_step(src: sqlite3.Connection, target: Path, _deadline_s: float) -> bool:
    dest = sqlite3.connect(target)
    src.backup(dest)
    dest.close()
    return True


def _vacuum_into(src: sqlite3.Connection, target: Path, _deadline_s: float) -> bool:
    src.execute("VACUUM INTO ?", (str(target),))
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=60)
    parser.add_argument("--dir", default="/tmp")
    args = parser.parse_args()
    folder = Path(args.dir)
    db = folder / "bench_backup.db"
    for leftover in folder.glob("bench_backup*"):
        leftover.unlink()
    conn = _connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("CREATE INDEX t_body ON t (body)")
    rows = args.mb * 1024 * 1024 // 900
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t (body) VALUES (?)",
                     ((os.urandom(200).hex(),) for _ in range(rows)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"database: {db.stat().st_size / 1e6:.0f} MB")
    for name, method in (("backup API, 256 pages + 5 ms sleeps", _paged),
                         ("backup API, one step", _one_step), ("VACUUM INTO", _vacuum_into)):
        target = folder / f"bench_backup_{method.__name__}.db"
        stop = multiprocessing.Event()
        out: multiprocessing.Queue = multiprocessing.Queue()
        writer = multiprocessing.Process(target=_writer, args=(db, stop, out))
        writer.start()
        time.sleep(0.5)
        start = time.perf_counter()
        finished = method(conn, target, 30.0)
        took = time.perf_counter() - start
        stop.set()
        latencies = out.get()
        writer.join()
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99)]
        print(f"{name}: {'finished' if finished else 'NOT finished (gave up)'} in {took:.2f} s; "
              f"writer: {len(latencies)} commits, p99 {p99 * 1000:.1f} ms, "
              f"slowest {latencies[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
