"""Read-only SQL over one tenant's streams, in a DuckDB that can read nothing else.

Each query gets a fresh in-memory DuckDB:

- every stream is a view over a pyarrow dataset of exactly that stream's files (the
  manifest lists them), so local and S3 lakes work the same and no path is ever opened
  by DuckDB itself; its dead letters are the view `dlq.<stream>` (and `<stream>_dlq`, the
  older name, which no stream id may take);
- file system access is off (`enable_external_access = false`), extensions can be
  neither installed nor loaded, and the configuration is locked before user SQL runs;
- only a single SELECT statement is accepted (COPY, ATTACH, INSTALL, SET, PRAGMA … are
  refused before they run);
- results stop at a row limit, and a timer interrupts queries that run too long.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from openenrich.errors import BadRequest
from openenrich.lake.storage import LakeStorage


@dataclass(frozen=True, slots=True)
class QueryResult:
    table: pa.Table
    truncated: bool


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class QuerySandbox:
    def __init__(self, storage: LakeStorage, *, threads: int, memory_limit: str) -> None:
        self.storage = storage
        self.threads = threads
        self.memory_limit = memory_limit

    def run(
        self,
        streams: Mapping[str, Sequence[tuple[str, int]]],
        dead_letters: Mapping[str, Sequence[tuple[str, int]]],
        sql: str,
        *,
        row_limit: int,
        timeout: float,
    ) -> QueryResult:
        """`streams` and `dead_letters` map a stream id to its files (relative path,
        size). Blocks: run it in a worker thread."""
        db = duckdb.connect(
            config={
                "threads": self.threads,
                "memory_limit": self.memory_limit,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            }
        )
        try:
            db.execute("SET enable_external_access = false")
            db.execute("SET TimeZone = 'UTC'")
            self._create_views(db, streams, dead_letters)
            db.execute("SET lock_configuration = true")
            self._check(db, sql)
            timer = threading.Timer(timeout, db.interrupt)
            timer.start()
            try:
                table = db.sql(sql).limit(row_limit + 1).to_arrow_table()
            except duckdb.InterruptException:
                raise BadRequest(f"query stopped after {timeout:g} s (the time limit)") from None
            except duckdb.PermissionException:
                raise BadRequest("queries may read only your own streams") from None
            except duckdb.Error as error:
                raise BadRequest(f"query failed: {_first_line(error)}") from None
            finally:
                timer.cancel()
        finally:
            db.close()
        truncated = table.num_rows > row_limit
        return QueryResult(table.slice(0, row_limit) if truncated else table, truncated)

    def _create_views(
        self,
        db: duckdb.DuckDBPyConnection,
        streams: Mapping[str, Sequence[tuple[str, int]]],
        dead_letters: Mapping[str, Sequence[tuple[str, int]]],
    ) -> None:
        """Stream views in the main schema, dead letters in `dlq`. Sources are registered
        under names with a space, which no stream id has, so they cannot hide a stream."""
        taken: set[str] = set()
        sources = 0

        def source(files: Sequence[tuple[str, int]]) -> str:
            nonlocal sources
            if not files:
                return "(SELECT NULL::VARCHAR AS _event_id WHERE false)"
            name = f"source {sources}"
            sources += 1
            db.register(name, self.storage.dataset(files))
            return quote(name)

        for name, files in streams.items():
            db.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM {source(files)}")  # noqa: S608
            taken.add(name.casefold())
        db.execute("CREATE SCHEMA dlq")
        for name, files in dead_letters.items():
            view = f"dlq.{quote(name)}"
            db.execute(f"CREATE VIEW {view} AS SELECT * FROM {source(files)}")  # noqa: S608
            # The older name, unless a stream from before ids ending in _dlq were refused
            # has it: then the name is that stream's.
            older = f"{name}_dlq"
            if older.casefold() not in taken:
                db.execute(f"CREATE VIEW {quote(older)} AS SELECT * FROM {view}")  # noqa: S608
                taken.add(older.casefold())

    @staticmethod
    def _check(db: duckdb.DuckDBPyConnection, sql: str) -> None:
        try:
            statements = db.extract_statements(sql)
        except duckdb.Error as error:
            raise BadRequest(f"query failed: {_first_line(error)}") from None
        if len(statements) != 1:
            raise BadRequest("send exactly one SQL statement")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise BadRequest("only SELECT statements are allowed")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300]
