"""The inline SQLite driver keeps its promises: writers queue as coroutines, readers never
wait for them, a stuck writer fails fast instead of freezing the loop, commits persist."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openenrich.db import sqlite_inline

pytestmark = pytest.mark.anyio


@contextlib.contextmanager
def loop_ticks() -> Iterator[list[int]]:
    """Counts 10 ms ticks of the running loop: how we see that a wait did not block it."""
    ticks = [0]

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(ticker())
    try:
        yield ticks
    finally:
        running.cancel()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    path = str(tmp_path / "inline.db")
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}",
        async_creator=sqlite_inline.connector(path, synchronous="FULL", busy_timeout=0.5),
        pool_size=4,
    )
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    await engine.dispose()


async def test_concurrent_writers_queue_instead_of_failing(engine: AsyncEngine) -> None:
    async def writer(n: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.05)  # hold the write transaction across an await

    started = time.monotonic()
    await asyncio.gather(*(writer(n) for n in range(4)))
    assert time.monotonic() - started >= 0.2  # they took turns
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 4


async def test_readers_do_not_wait_for_an_open_write(engine: AsyncEngine) -> None:
    async with engine.connect() as writer:
        await writer.execute(text("INSERT INTO t VALUES (1)"))  # uncommitted
        # The write stays open until the read is over (this task holds it), so a reader
        # that waited for it, on the write lock or in the busy retry, could only end by
        # failing with "database is locked" after the engine's busy_timeout (0.5 s). A read
        # that answers, with the write still open, did not wait for it.
        async with engine.connect() as reader:
            count = (await reader.execute(text("SELECT count(*) FROM t"))).scalar()
        assert count == 0
        assert writer.in_transaction()  # the write was open all along
        await writer.commit()
    async with engine.connect() as reader:
        assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar() == 1


async def test_a_stuck_writer_makes_the_next_one_fail_fast(engine: AsyncEngine) -> None:
    async with engine.connect() as stuck:
        await stuck.execute(text("INSERT INTO t VALUES (1)"))
        with loop_ticks() as ticks, pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as second:
                await second.execute(text("INSERT INTO t VALUES (2)"))
        assert ticks[0] > 20  # the loop kept running while the second writer waited
        await stuck.rollback()

    # Rolling back released the lock: the next writer goes straight through.
    async with engine.begin() as third:
        await third.execute(text("INSERT INTO t VALUES (3)"))


async def test_a_writer_in_another_process_is_waited_for_asleep(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Another process's write lock (here another connection, as `openenrich worker` would
    hold it): the loop keeps running while we wait, and the write goes through once the
    lock is free; held past the timeout, the write fails with SQLite's own error."""
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        started = time.monotonic()
        with loop_ticks() as ticks:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (2)"))
        assert time.monotonic() - started >= 0.25
        assert ticks[0] > 15  # the loop ran while the write waited

        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (3)"))
        other.execute("ROLLBACK")
    finally:
        other.close()
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT n FROM t ORDER BY n"))).all()
    assert [n for (n,) in rows] == [1, 2]


async def test_committed_rows_are_on_disk(engine: AsyncEngine, tmp_path: Path) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t VALUES (42)"))
    with sqlite3.connect(tmp_path / "inline.db") as other:
        assert other.execute("SELECT n FROM t").fetchall() == [(42,)]
