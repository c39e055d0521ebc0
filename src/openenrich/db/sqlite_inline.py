"""SQLite for SQLAlchemy's asyncio engine, run on the event loop's own thread.

aiosqlite gives each connection a thread and hops to it for every call; a hop costs about
150 µs on a small machine and SQLAlchemy makes about five per query, so a key lookup that
SQLite answers in 13 µs took a millisecond. This module provides connections with the
aiosqlite interface SQLAlchemy's `sqlite+aiosqlite` dialect drives (passed in through
`create_async_engine(async_creator=…)`), and runs each statement inline instead.

Running SQLite on the loop is safe because nothing in it waits long:

- Reads never wait: in WAL mode readers do not block on writers.
- Writers in this process queue on an asyncio lock, taken before a connection's first
  write and released at commit or rollback. A second writer therefore waits as a
  coroutine instead of spinning in SQLite's busy handler, which would block the loop
  and, with it, the writer it waits for. A writer in another process (`openenrich
  worker`, the CLI) is waited for asleep too: these connections have no busy timeout, and
  a statement that meets the lock is retried with a short backoff (`_busy_retry`).
- Commits run inline too, fsync included (`synchronous=FULL`; a fraction of a millisecond
  on a local SSD). A commit in a worker thread looked kinder to the loop but measured
  worse: the write lock stayed held until the loop got back to the committing coroutine,
  a whole loop turn under load, so every writer queued behind those turns (write-lock
  waits of 20 ms at the median with 60 runs a second; none inline).
- Except a big transaction's commit (more than `BIG_COMMIT_CHANGES` rows changed: a flush
  that saves the session state of 80,000 users): its fsync writes megabytes, and an
  automatic checkpoint may follow; inline, that stalled every request for ~100 ms
  (bench/ingest.py on a clickstream stream). It runs in a worker thread; the writer lock
  waits a loop turn longer, which such a rare, long transaction does not notice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from openenrich.db.pragmas import sqlite_pragmas

# Rows a transaction changes past which its commit runs in a worker thread (see above).
BIG_COMMIT_CHANGES = 5_000


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


class InlineCursor:
    def __init__(self, connection: InlineConnection) -> None:
        self._owner = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        await self._owner._before(sql)
        try:
            await self._owner._busy_retry(self._cursor.execute, sql, parameters)
        finally:
            self._owner._after()
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        await self._owner._before(sql)
        try:
            rows = list(parameters)  # a retry must see them again
            await self._owner._busy_retry(self._cursor.executemany, sql, rows)
        finally:
            self._owner._after()
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    def __init__(
        self,
        conn: sqlite3.Connection,
        write_lock: asyncio.Lock,
        *,
        lock_timeout: float,
    ) -> None:
        self._conn = conn
        self._write_lock = write_lock
        self._lock_timeout = lock_timeout
        self._holds_lock = False
        self._changes_before = 0  # total_changes when the transaction took the write lock

    # The attribute SQLAlchemy's adapter checks before commit and rollback.
    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def _before(self, sql: str) -> None:
        if self._holds_lock or _is_read(sql):
            return
        try:
            async with asyncio.timeout(self._lock_timeout):  # unlike wait_for, no extra task
                await self._write_lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holds_lock = True
        self._changes_before = self._conn.total_changes

    async def _busy_retry(self, call: Callable[[str, Any], object], sql: str, args: Any) -> None:
        """Run `call(sql, args)`; while another process holds the database's write lock,
        wait for it here, asleep, rather than in SQLite's busy handler, which would sleep
        on the event loop's thread. Retrying is safe: a statement that meets the lock is
        the transaction's first write (reads take no lock in WAL mode), so it did nothing."""
        delay = 0.0005
        deadline: float | None = None
        while True:
            try:
                call(sql, args)
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self._lock_timeout
                if now >= deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)

    def _after(self) -> None:
        # A statement that ran outside a transaction (DDL, PRAGMA) is done already.
        if self._holds_lock and not self._conn.in_transaction:
            self._release()

    def _release(self) -> None:
        if self._holds_lock:
            self._holds_lock = False
            self._write_lock.release()

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        try:
            if self._conn.total_changes - self._changes_before > BIG_COMMIT_CHANGES:
                await asyncio.to_thread(self._conn.commit)
            else:
                self._conn.commit()
        finally:
            self._release()

    async def rollback(self) -> None:
        try:
            self._conn.rollback()
        finally:
            self._release()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.rollback()
            self._conn.close()
        finally:
            self._release()


def connector(path: str, *, synchronous: str, busy_timeout: float = 10.0) -> Callable[[], Any]:
    """The `async_creator` for one database file; its connections share one write lock."""
    write_lock = asyncio.Lock()

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False)
        for pragma in sqlite_pragmas(synchronous):
            conn.execute(pragma)
        conn.execute("PRAGMA busy_timeout=0")  # InlineConnection waits, off the loop's thread
        return InlineConnection(conn, write_lock, lock_timeout=busy_timeout)

    return connect
