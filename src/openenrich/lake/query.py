"""Read-only SQL over one tenant's streams, in a DuckDB that can read nothing else.

Each query gets a fresh in-memory DuckDB:

- every stream is a view over a pyarrow dataset of exactly that stream's files (the
  manifest lists them), so local and S3 lakes work the same and no path is ever opened
  by DuckDB itself;
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
        views: Mapping[str, Sequence[tuple[str, int]]],
        sql: str,
        *,
        row_limit: int,
        timeout: float,
    ) -> QueryResult:
        """`views` maps a view name to its files (relative path, size). Blocks: run it in
        a worker thread."""
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
            for index, (name, files) in enumerate(views.items()):
                if files:
                    db.register(f"__stream_{index}", self.storage.dataset(files))
                    source = f"__stream_{index}"
                else:
                    source = "(SELECT NULL::VARCHAR AS _event_id WHERE false)"
                db.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM {source}")  # noqa: S608
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
