"""One `Database` per process: the async engine and its session factories."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, Row, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from openenrich.config import Settings
from openenrich.db import sqlite_inline
from openenrich.db.pragmas import sqlite_pragmas


def install_sqlite_pragmas(sync_engine: Any, synchronous: str) -> None:
    """For blocking engines (migrations, tools): the pragmas on each new connection."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in sqlite_pragmas(synchronous):
            cursor.execute(pragma)
        cursor.close()


T = TypeVar("T")
_TENANCY_MARKER = "SELECT value FROM change_counters WHERE name = 'tenancy'"


class InlineSession(AsyncSession):
    """A session on an inline SQLite connection.

    SQLAlchemy closes an async session in a task of its own, so that a cancellation cannot
    interrupt the close half way. Here nothing in the close waits, so it cannot be
    interrupted, and the task would only put the caller at the back of the event loop's
    queue: under load a whole loop turn, tens of milliseconds, on every unit of work.
    """

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        await self.close()


class Database:
    def __init__(self, url: URL, *, pool_size: int = 10, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.dialect = url.get_backend_name()
        # No overflow: connections opened past the pool are closed again on return, and on
        # PostgreSQL each is a new server process. Under load that churn cost more CPU
        # than the queries; queueing for a warm connection is far cheaper.
        options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 0}
        if self.dialect == "sqlite":
            if not url.database or url.database == ":memory:":
                raise ValueError("OpenEnrich keeps SQLite in a file: give sqlite:///PATH")
            options["async_creator"] = sqlite_inline.connector(
                url.database, synchronous=sqlite_synchronous
            )
        else:
            # No pre-ping (a round trip per checkout): a connection PostgreSQL dropped
            # fails its request with a 503 and the pool replaces it.
            options["pool_recycle"] = 1800
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self.sessionmaker = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            class_=InlineSession if self.dialect == "sqlite" else AsyncSession,
        )
        self._inline_reader: Engine | None = None
        self._autocommit: AsyncEngine = self.engine
        if self.dialect == "sqlite":
            # Reads on hot paths skip the async layers entirely: a WAL reader never waits,
            # so a blocking read on the loop's thread takes microseconds, not a hop.
            self._inline_reader = create_engine(
                url.set(drivername="sqlite"), pool_size=1, max_overflow=4
            )
            install_sqlite_pragmas(self._inline_reader, sqlite_synchronous)
            assert url.database is not None
            self._probe: sqlite3.Connection | None = sqlite3.connect(
                url.database, check_same_thread=False
            )
        else:
            self._probe = None
            # Single statements need no BEGIN, COMMIT or ROLLBACK round trips around them.
            self._autocommit = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_recycle=1800,
                isolation_level="AUTOCOMMIT",
                skip_autocommit_rollback=True,
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database,
            pool_size=settings.db_pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
        )

    def session(self) -> AsyncSession:
        """A session for a unit of work; the caller commits."""
        return self.sessionmaker()

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run `query(connection)`, which only reads, outside any transaction.

        The fastest way each backend has: on SQLite inline on a blocking connection
        (never wait for anything inside `query`), on PostgreSQL through the async engine.
        """
        if self._inline_reader is not None:
            with self._inline_reader.connect() as connection:
                return query(connection)
        async with self._autocommit.connect() as connection:
            return await connection.run_sync(query)

    async def read_in_thread(self, query: Callable[[Connection], T]) -> T:
        """Run `query(connection)`, a long read (thousands of rows), outside any
        transaction and off the event loop where it would hold it.

        On SQLite in a worker thread on a blocking connection: SQLite lets go of the GIL
        while it works, so requests go on meanwhile (inline, a flush's lookup of 50,000
        users held the loop for a quarter of a second). On PostgreSQL as `read`: the
        database does the work, and the loop only waits for it.
        """
        inline_reader = self._inline_reader
        if inline_reader is None:
            return await self.read(query)

        def run() -> T:
            with inline_reader.connect() as connection:
                return query(connection)

        return await asyncio.to_thread(run)

    def tenancy_marker(self) -> int | None:
        """A number that changes whenever a key, organisation or plan changes (a trigger
        bumps it; a key's `last_used_at` does not), by any connection or process. None where
        the backend cannot say cheaply (PostgreSQL: it would cost a round trip).

        On SQLite a read on a connection of its own: a few microseconds, no I/O.
        """
        if self._probe is None:
            return None
        row = self._probe.execute(_TENANCY_MARKER).fetchone()
        return int(row[0]) if row is not None else None

    async def execute_one(self, statement: Executable) -> Row[Any]:
        """Run one statement in a transaction of its own and return its one row (e.g. an
        upsert with RETURNING). On PostgreSQL a single round trip."""
        async with self._autocommit.connect() as connection:
            row = (await connection.execute(statement)).one()
            await connection.commit()
        return row

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._autocommit is not self.engine:
            await self._autocommit.dispose()
        if self._inline_reader is not None:
            self._inline_reader.dispose()
        if self._probe is not None:
            self._probe.close()
