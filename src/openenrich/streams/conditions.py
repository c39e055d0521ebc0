"""Conditions of filter and route steps: SQL boolean expressions over a batch's columns.

A condition is checked when the stream is saved (`Condition.parse`): it must be one
expression, with no subquery, that DuckDB can bind; on a strict stream against the
declared columns (an unknown column is refused), on the others against the columns it
names, untyped, since their types are only known batch by batch.

It is evaluated over the whole Arrow batch at once by a sandboxed DuckDB (the one user
queries run in: no file system, no extensions, configuration locked). A column the batch
does not have is null. A row on which the expression fails (a text that is not a number,
say) does not match. An expression that cannot be evaluated on a batch at all (its columns
have types it does not accept there) raises `Unevaluable`: the step decides what that means,
never by losing rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from openenrich.errors import BadRequest
from openenrich.lake.query import sandboxed

MAX_LENGTH = 2_000
_BATCH = "_batch"
_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}
# Every batch has these (lake/parquet.py RESERVED).
_ALWAYS = {"_event_id": pa.string(), "_ingested_at": pa.timestamp("us", tz="UTC")}
# Parse-tree nodes a condition may not hold: they would read something besides the batch.
# Functions whose answer changes between two runs over the same rows.
_VOLATILE = {
    "random",
    "setseed",
    "uuid",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "now",
    "get_current_timestamp",
    "current_timestamp",
    "current_date",
    "current_time",
    "get_current_time",
    "today",
    "transaction_timestamp",
    "nextval",
}
_REFUSED = {"SUBQUERY": "a subquery", "WINDOW": "a window function"}


class Unevaluable(Exception):
    """The condition cannot be evaluated on this batch's columns (their types)."""


_local = threading.local()


def _db() -> duckdb.DuckDBPyConnection:
    """One sandboxed DuckDB per thread (the flush thread, a request's thread)."""
    db: duckdb.DuckDBPyConnection | None = getattr(_local, "db", None)
    if db is None:
        db = _local.db = sandboxed(threads=1, memory=256 * 1024 * 1024)
    return db


@dataclass(frozen=True, slots=True)
class Condition:
    expression: str
    columns: frozenset[str]  # the column names it refers to

    @classmethod
    def parse(cls, expression: Any, *, where: str, declared: Mapping[str, str] | None) -> Condition:
        """Check `expression` (BadRequest naming `where` if it is wrong). `declared`: the
        columns a strict stream's batches have at this step (with their types), else None."""
        if not isinstance(expression, str) or not expression.strip():
            raise BadRequest(f"{where}: a condition must be a non-empty SQL expression")
        if len(expression) > MAX_LENGTH:
            raise BadRequest(f"{where}: a condition may have at most {MAX_LENGTH} characters")
        columns = _columns_of(expression, where)
        if declared is not None:
            unknown = sorted(n for n in columns if n not in declared and n not in _ALWAYS)
            if unknown:
                raise BadRequest(
                    f"{where}: unknown column {', '.join(repr(n) for n in unknown)} "
                    f"(the stream's columns here: {', '.join(sorted(declared))})"
                )
            schema = pa.schema([(n, _ARROW_TYPES.get(t, pa.string())) for n, t in declared.items()])
        else:
            schema = pa.schema([(name, pa.null()) for name in sorted(columns)])
        for name, kind in _ALWAYS.items():
            if name not in schema.names:
                schema = schema.append(pa.field(name, kind))
        condition = cls(expression, frozenset(columns))
        try:
            condition._evaluate(schema.empty_table())
        except Unevaluable as error:
            raise BadRequest(f"{where}: {error}") from None
        return condition

    def evaluate(self, table: pa.Table) -> pa.BooleanArray:
        """True where a row matches (false where it does not, or the expression fails)."""
        missing = [name for name in self.columns if name not in table.column_names]
        for name in missing:
            table = table.append_column(name, pa.nulls(table.num_rows))
        return self._evaluate(table)

    def _evaluate(self, table: pa.Table) -> pa.BooleanArray:
        db = _db()
        db.register(_BATCH, table)
        try:
            result = db.sql(self._sql()).to_arrow_table()
        except duckdb.Error as error:
            raise Unevaluable(_first_line(error)) from None
        finally:
            db.unregister(_BATCH)
        matched = result.column(0).combine_chunks() if result.num_rows else pa.array([], pa.bool_())
        return pa.compute.fill_null(matched, False)

    def _sql(self) -> str:
        # _columns_of checked that this is one expression and nothing else.
        return f"SELECT coalesce(TRY(({self.expression})::BOOLEAN), false) FROM {_BATCH}"  # noqa: S608


def _columns_of(expression: str, where: str) -> set[str]:
    """The columns `expression` names, after checking it is one plain expression."""
    sql = f"SELECT ({expression}) AS _k FROM {_BATCH}"  # noqa: S608
    try:
        serialized = _db().execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    except duckdb.Error as error:
        raise BadRequest(f"{where}: {_first_line(error)}") from None
    tree: dict[str, Any] = orjson.loads(serialized[0][0]) if serialized else {"error": True}
    if tree.get("error"):
        message = str(tree.get("error_message") or "not a valid SQL expression")
        raise BadRequest(f"{where}: {message.splitlines()[0]}")
    statements = tree.get("statements", [])
    node = statements[0].get("node", {}) if len(statements) == 1 else {}
    plain = (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list", [])) == 1
        and node.get("from_table", {}).get("table_name") == _BATCH
        and node.get("where_clause") is None
        and not node.get("group_expressions")
        and node.get("having") is None
        and not node.get("modifiers")
        and not node.get("cte_map", {}).get("map")
    )
    if not plain:
        raise BadRequest(f"{where}: a condition must be one SQL expression")
    columns: set[str] = set()
    for item in _nodes(node["select_list"][0]):
        kind = item.get("class")
        if kind in _REFUSED:
            raise BadRequest(f"{where}: a condition may not contain {_REFUSED[kind]}")
        if kind == "FUNCTION" and str(item.get("function_name", "")).lower() in _VOLATILE:
            raise BadRequest(
                f"{where}: {item['function_name']}() gives another answer each time; a condition "
                "must decide the same way when a batch is processed again after a restart"
            )
        if kind == "COLUMN_REF":
            names = item.get("column_names") or []
            if names:
                columns.add(str(names[0]))
    return columns


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300]


__all__ = ["Condition", "Unevaluable"]
