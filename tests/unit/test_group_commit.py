"""Group commit: concurrent submissions written together, results in order, failures
isolated, one item per key in a batch, cancelled callers left out."""

from __future__ import annotations

import asyncio

import pytest

from guidebot.db.group_commit import GroupCommit


class Recorder:
    def __init__(self, *, bad: set[int] | None = None, pause: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.bad = bad or set()
        self.pause = pause

    async def write(self, items: list[int]) -> list[int]:
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.bad & set(items):
            raise ValueError(f"bad items {sorted(self.bad & set(items))}")
        self.batches.append(list(items))
        return [i * 10 for i in items]


async def test_concurrent_submissions_share_one_batch_and_get_their_own_result() -> None:
    rec = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(rec.write)
    results = await asyncio.gather(*(commit.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert rec.batches == [list(range(50))]


async def test_what_arrives_during_a_write_goes_in_the_next_batch() -> None:
    rec = Recorder(pause=0.02)
    commit: GroupCommit[int, int] = GroupCommit(rec.write, max_batch=4)
    first = [asyncio.create_task(commit.submit(i)) for i in range(6)]
    await asyncio.sleep(0.005)
    later = [asyncio.create_task(commit.submit(i)) for i in range(6, 9)]
    assert await asyncio.gather(*first, *later) == [i * 10 for i in range(9)]
    assert rec.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


async def test_a_failing_batch_is_written_item_by_item_so_only_the_bad_item_fails() -> None:
    rec = Recorder(bad={3})
    commit: GroupCommit[int, int] = GroupCommit(rec.write)
    results = await asyncio.gather(*(commit.submit(i) for i in range(6)),
                                   return_exceptions=True)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 10, 20, 40, 50]
    assert isinstance(results[3], ValueError)
    assert rec.batches == [[0], [1], [2], [4], [5]]


async def test_items_with_the_same_key_never_share_a_batch() -> None:
    rec = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(rec.write, key=lambda i: i % 3)
    await asyncio.gather(*(commit.submit(i) for i in range(7)))
    assert rec.batches == [[0, 1, 2], [3, 4, 5], [6]]
    for batch in rec.batches:
        assert len({i % 3 for i in batch}) == len(batch)


async def test_a_caller_cancelled_before_its_batch_is_not_written() -> None:
    rec = Recorder(pause=0.02)
    commit: GroupCommit[int, int] = GroupCommit(rec.write, max_batch=1)
    first = asyncio.create_task(commit.submit(1))
    gone = asyncio.create_task(commit.submit(2))
    kept = asyncio.create_task(commit.submit(3))
    await asyncio.sleep(0.005)
    gone.cancel()
    assert await first == 10 and await kept == 30
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert rec.batches == [[1], [3]]


async def test_a_batch_is_written_in_the_most_urgent_lane_of_its_callers() -> None:
    from guidebot import lanes

    seen: list[lanes.Lane] = []

    async def write(items: list[int]) -> list[int]:
        seen.append(lanes.current())
        return items

    commit: GroupCommit[int, int] = GroupCommit(write)

    async def follow_up(i: int) -> int:
        lanes.run_later()
        return await commit.submit(i)

    async def urgent(i: int) -> int:
        return await commit.submit(i)

    # a follow-up starts the flush; an urgent caller joins the batch
    assert await asyncio.gather(follow_up(1), urgent(2)) == [1, 2]
    assert await follow_up(3) == 3
    assert seen == [lanes.Lane.NOW, lanes.Lane.LATER]


async def test_a_batch_goes_off_the_loop_only_when_all_its_callers_work_off_it() -> None:
    """A job (off the loop: aiosqlite on SQLite) that starts a flush does not take an
    event's write off the loop with it; a batch of jobs' writes stays off it."""
    from guidebot import lanes

    seen: list[tuple[lanes.Lane, bool]] = []

    async def write(items: list[int]) -> list[int]:
        seen.append((lanes.current(), lanes.off_loop()))
        return items

    commit: GroupCommit[int, int] = GroupCommit(write)

    async def job(i: int) -> int:
        lanes.run_later()
        return await commit.submit(i)

    async def follow_up(i: int) -> int:
        with lanes.running_as(lanes.Lane.LATER):
            return await commit.submit(i)

    assert await asyncio.gather(job(1), follow_up(2)) == [1, 2]
    assert await asyncio.gather(job(3), job(4)) == [3, 4]
    assert seen == [(lanes.Lane.LATER, False), (lanes.Lane.LATER, True)]


async def test_shared_transactions_commit_bodies_together_and_isolate_a_failing_one(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from guidebot.db.engine import Database
    from guidebot.db.group_commit import SharedTransactions

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")
    try:
        async with db.write() as s:
            await s.execute(text("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
        shared = SharedTransactions(db)

        def insert(v: int):  # type: ignore[no-untyped-def]
            async def body(s):  # type: ignore[no-untyped-def]
                await s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})
                return v
            return body

        results = await asyncio.gather(shared.run(insert(1)), shared.run(insert(2)),
                                       shared.run(insert(1)),  # duplicate: fails alone
                                       shared.run(insert(3)), return_exceptions=True)
        assert results[:2] == [1, 2] and results[3] == 3
        assert isinstance(results[2], Exception)
        async with db.read() as s:
            rows = (await s.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all()
        assert list(rows) == [1, 2, 3]
    finally:
        await db.dispose()
