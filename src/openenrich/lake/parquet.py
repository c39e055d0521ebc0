"""Buffered records to one Parquet file, with DuckDB.

The records' events are joined on a scratch file, one per line (an array when a record
holds one, see wal.py: DuckDB reads lines a quarter faster), and read by DuckDB with
explicit column types. On Linux the scratch file lives in memory and is reused by every
batch (`_Scratch`), so a flush neither writes its events to disk a second time nor asks
the kernel for fresh pages for them:

- a strict stream's declared fields give the types directly;
- otherwise DuckDB detects them over every event, and we map what it finds onto our
  types: strings stay strings (no guessing of dates), integers are int64, decimals
  float64, booleans boolean, and objects, arrays and anything wider become JSON text.
  DuckDB calls integers of both signs HUGEINT (as it does integers past int64): they are
  read as int64 first, and as JSON text if one does not fit.

`_event_id` (`{node}-{lsn}-{index}`) and `_ingested_at` come from the records' headers:
DuckDB expands each header into one row per event and attaches those rows to the events
by position (a POSITIONAL JOIN; an ASOF join on the row number cost ten times the whole
copy). The same record always yields the same ids, however often recovery rewrites its
file. Timestamps are microseconds, UTC.

Events reach us as the client sent them. If DuckDB refuses a batch (an object with a
duplicate key, a field named like one of ours), the batch is normalised through msgspec
and tried again; if that fails too, its events are kept whole in one JSON column `_raw`.
A batch DuckDB cannot read even so (bytes that are not JSON, written by an older version
or damaged on disk) raises UnreadableBatch: the engine then asks `unreadable` about each
record, quarantines the ones at fault and writes the rest, so no record blocks a stream.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar

import duckdb
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openenrich.lake.wal import Record, payload_as_array, payload_is_array

logger = logging.getLogger("openenrich.lake.parquet")
T = TypeVar("T")

RESERVED = ("_event_id", "_ingested_at")

# How the events of a scratch file are laid out, in DuckDB's words (its `format`); SQL is
# built with these two constants only.
Layout = Literal["newline_delimited", "array"]

# Our field types and the DuckDB types that store them.
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "json": "JSON",
}
_FROM_DUCKDB = {
    "VARCHAR": "string",
    "DATE": "string",
    "TIME": "string",
    "TIMESTAMP": "string",
    "TIMESTAMP WITH TIME ZONE": "string",
    "UUID": "string",
    "BIGINT": "int64",
    "INTEGER": "int64",
    "SMALLINT": "int64",
    "TINYINT": "int64",
    "UINTEGER": "int64",
    "USMALLINT": "int64",
    "UTINYINT": "int64",
    "DOUBLE": "float64",
    "FLOAT": "float64",
    "BOOLEAN": "boolean",
}

DLQ_COLUMNS = {
    "rejected_at": "timestamp",
    "reason": "string",
    "field": "string",
    "original": "json",
}


# DuckDB's row group size, which `write` uses: processed batches are written alike.
ROW_GROUP_ROWS = 122_880
# A read for processing: up to _WHOLE_BYTES of JSON comes as one piece per column.
_WHOLE_BYTES = 1 << 30
_WHOLE_ROWS = 1 << 40
_PIECE_ROWS = 1_000_000


class UnreadableBatch(Exception):
    """DuckDB could not read a batch, not even as whole JSON objects."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # one of DUCKDB_TYPES
    present: int  # events with a non-null value


@dataclass(frozen=True, slots=True)
class WrittenBatch:
    rows: int
    columns: list[Column]  # user columns (reserved ones excluded)


def detected_type(duckdb_type: str) -> str:
    return _FROM_DUCKDB.get(duckdb_type, "json")


class ParquetWriter:
    """Writes batches in worker threads, one at a time per writer."""

    def __init__(
        self, scratch: Path, *, memory_limit: str = "1GB", scratch_in_memory: bool = True
    ) -> None:
        """`scratch`: a folder for files DuckDB reads; `scratch_in_memory=False` keeps
        batches there too, as where memfd is missing."""
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self._source = _Scratch.create(scratch, in_memory=scratch_in_memory)
        self._db = duckdb.connect(
            config={
                "threads": 1,  # the other core serves HTTP
                "memory_limit": memory_limit,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                # The scratch file has one name and new contents every batch.
                "enable_external_file_cache": False,
            }
        )

    def close(self) -> None:
        self._db.close()
        self._source.close()

    def write(
        self,
        records: Sequence[Record],
        destination: Path,
        *,
        declared: Mapping[str, str] | None = None,
    ) -> WrittenBatch:
        """Write `records` (in log order) to `destination`, a local path.

        `declared` (field -> our type) skips detection: every event was validated against
        it (strict streams, dead letters).
        """
        return self._readable(records, declared, lambda batch: self._copy(batch, destination))

    def read(
        self, records: Sequence[Record], *, declared: Mapping[str, str] | None = None
    ) -> EventBatch:
        """The events of `records` as one Arrow table, typed as `write` would store them
        (JSON columns as text), for processing before `write_table`."""
        return self._readable(records, declared, lambda batch: self._fetch(batch, records))

    def write_table(self, batch: EventBatch, destination: Path) -> WrittenBatch:
        """Write a (processed) batch to `destination` as `write` would have written it:
        zstd, JSON columns with Parquet's JSON type, row groups of DuckDB's size."""
        table = batch.table
        for index, name in enumerate(table.column_names):
            if batch.columns.get(name) == "json" and not isinstance(
                table.schema.field(index).type, pa.JsonType
            ):
                json_type = pa.json_(pa.string())
                table = table.set_column(index, name, table.column(index).cast(json_type))
        # Min/max statistics for the columns they can serve: numbers, times and flags. A
        # text column's range (URLs, ids) prunes no row group and cost 0.2 s a million rows.
        ranged = [
            field.name
            for field in table.schema
            if not (pa.types.is_string(field.type) or isinstance(field.type, pa.JsonType))
        ]
        pq.write_table(
            table,
            destination,
            compression="zstd",
            row_group_size=ROW_GROUP_ROWS,
            write_statistics=ranged,
        )
        return WrittenBatch(
            rows=table.num_rows,
            columns=[
                Column(name, kind, table.num_rows - _nulls(table, name))
                for name, kind in batch.columns.items()
            ],
        )

    def _readable(
        self,
        records: Sequence[Record],
        declared: Mapping[str, str] | None,
        use: Callable[[_Selection], T],
    ) -> T:
        """Call `use` with the records' events as DuckDB reads them: as sent, else
        normalised, else whole as `_raw`; UnreadableBatch when even that fails."""
        scratch = self._source
        with scratch.lock:
            return self._read_scratch(scratch, records, declared, use)

    def _read_scratch(
        self,
        scratch: _Scratch,
        records: Sequence[Record],
        declared: Mapping[str, str] | None,
        use: Callable[[_Selection], T],
    ) -> T:
        try:
            layout = scratch.fill([record.payload for record in records])
            source = scratch.path
            boundaries = _boundaries(records)
            db = self._db.cursor()
            try:
                db.execute("SET TimeZone = 'UTC'")
                db.register("_records", boundaries)
                try:
                    return use(_selected(db, source, layout, declared))
                except duckdb.Error as error:
                    refused = error
                if declared is None:  # an integer past int64, perhaps: as JSON then
                    try:
                        return use(_selected(db, source, layout, declared, huge_as_int=False))
                    except duckdb.Error as error:
                        refused = error
                logger.warning("batch refused as sent (%s); normalising it", refused)
                try:
                    normalised = [_normalised(record.payload) for record in records]
                except msgspec.DecodeError as error:
                    logger.error("batch cannot be decoded (%s); keeping events as _raw", error)
                else:
                    layout = scratch.fill(normalised)
                    try:
                        return use(_selected(db, source, layout, declared, huge_as_int=False))
                    except duckdb.Error as error:
                        logger.error(
                            "batch refused after normalising (%s); keeping it as _raw", error
                        )
                try:
                    return use(_selected_raw(db, source, layout))
                except duckdb.Error as error:
                    raise UnreadableBatch(_first_line(error)) from error
            finally:
                db.close()
        finally:
            scratch.release()

    def unreadable(self, record: Record) -> str | None:
        """Why DuckDB cannot read this record's events, even as whole JSON objects; None
        when it can. Blocks: run it where `write` runs."""
        source = self.scratch / f"{uuid.uuid4().hex}.json"
        db = self._db.cursor()
        try:
            source.write_bytes(payload_as_array(record.payload))
            read = db.execute(
                "SELECT count(*) FROM read_json_objects(?, format = 'array')", [str(source)]
            ).fetchall()
        except duckdb.IOException:
            raise  # the scratch folder, not the record
        except duckdb.Error as error:
            return _first_line(error)
        finally:
            db.close()
            source.unlink(missing_ok=True)
        if read[0][0] != record.header.count:
            return f"the record holds {read[0][0]} events, its header says {record.header.count}"
        return None

    def _copy(self, selection: _Selection, destination: Path) -> WrittenBatch:
        selection.db.execute(
            f"COPY ({selection.sql}) TO '{_path_literal(destination)}' "
            "(FORMAT parquet, COMPRESSION zstd)",
            [str(selection.source)],
        ).fetchall()
        return _summarise(destination, selection.columns)

    def _fetch(self, selection: _Selection, records: Sequence[Record]) -> EventBatch:
        # The events alone, and their ids and ingest times built by Arrow: the positional
        # join `_copy` uses cost DuckDB 0.5 s a million events, a third of the read.
        # Each column in one piece where Arrow's 32-bit string offsets allow it (the JSON
        # is larger than its strings): enrichers work on whole columns, and combining
        # DuckDB's pieces of two text columns cost 0.25 s a million events.
        size = sum(len(record.payload) for record in records)
        events = selection.db.sql(
            selection.events_sql, params=[str(selection.source)]
        ).to_arrow_table(batch_size=_WHOLE_ROWS if size < _WHOLE_BYTES else _PIECE_ROWS)
        if events.num_rows != sum(record.header.count for record in records):
            raise duckdb.InvalidInputException(
                f"read {events.num_rows} events where the records hold "
                f"{sum(record.header.count for record in records)}"
            )
        event_ids, ingested_at = _per_event(records)
        table = events.append_column("_event_id", event_ids).append_column(
            "_ingested_at", ingested_at
        )
        if "_none" in table.column_names:
            table = table.drop_columns(["_none"])
        return EventBatch(table, dict(selection.columns))


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events read from log records: the Arrow table (user columns, then `_event_id` and
    `_ingested_at`) and the type of each user column (our names: string, int64, json …)."""

    table: pa.Table
    columns: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Selection:
    db: duckdb.DuckDBPyConnection
    source: Path
    sql: str  # one `?`: the source file
    columns: Mapping[str, str]
    events_sql: str  # the events alone, without `_event_id` and `_ingested_at`


def _selected(
    db: duckdb.DuckDBPyConnection,
    source: Path,
    layout: Layout,
    declared: Mapping[str, str] | None,
    *,
    huge_as_int: bool = True,
) -> _Selection:
    if declared is None:
        described = db.execute(
            f"DESCRIBE SELECT * FROM read_json(?, format = '{layout}', maximum_depth = 2, "  # noqa: S608
            "sample_size = -1)",
            [str(source)],
        ).fetchall()
        columns = {
            str(row[0]): "int64"
            if huge_as_int and str(row[1]) == "HUGEINT"
            else detected_type(str(row[1]))
            for row in described
        }
    else:
        columns = dict(declared)
    for name in RESERVED:
        columns.pop(name, None)
    spec = (
        "{"
        + ", ".join(f"{_literal(name)}: '{DUCKDB_TYPES[kind]}'" for name, kind in columns.items())
        + "}"
    )
    selected = "".join(f"e.{_identifier(name)}, " for name in columns)
    if columns:
        events = f"read_json(?, format = '{layout}', columns = {spec})"
    else:  # every event was an empty object
        events = f"(SELECT 1 AS _none FROM read_json_objects(?, format = '{layout}'))"  # noqa: S608
    # Names are quoted by _identifier/_literal.
    sql = f"""
        SELECT {selected} m._event_id, m._ingested_at
        FROM {events} AS e POSITIONAL JOIN ({_PER_EVENT}) AS m
    """  # noqa: S608
    events_sql = f"SELECT {selected.rstrip(', ') or 'e._none'} FROM {events} AS e"  # noqa: S608
    return _Selection(db, source, sql, columns, events_sql)


def _selected_raw(db: duckdb.DuckDBPyConnection, source: Path, layout: Layout) -> _Selection:
    sql = f"""
        SELECT e.json AS _raw, m._event_id, m._ingested_at
        FROM read_json_objects(?, format = '{layout}') AS e
        POSITIONAL JOIN ({_PER_EVENT}) AS m
    """  # noqa: S608
    events_sql = f"SELECT e.json AS _raw FROM read_json_objects(?, format = '{layout}') AS e"  # noqa: S608
    return _Selection(db, source, sql, {"_raw": "json"}, events_sql)


# One row per event, in log order: its id and its record's ingest time.
_PER_EVENT = """
    SELECT r.node || '-' || r.lsn || '-' || g.i AS _event_id,
           make_timestamp(r.ingested_at)::TIMESTAMPTZ AS _ingested_at
    FROM _records AS r, range(r.count) AS g(i)
    ORDER BY r.start_row, g.i
"""


def _per_event(records: Sequence[Record]) -> tuple[pa.Array, pa.Array]:
    """`_event_id` and `_ingested_at` of each event, in log order, as `_PER_EVENT` makes
    them for `_copy`."""
    counts = np.array([record.header.count for record in records], dtype=np.int64)
    owner = np.repeat(np.arange(len(records)), counts)  # each event's record
    starts = np.cumsum(counts) - counts
    index = np.arange(int(counts.sum()), dtype=np.int64) - starts[owner]
    prefixes = pa.array([f"{record.node[-12:]}-{record.header.lsn}-" for record in records])
    event_ids = pc.binary_join_element_wise(
        prefixes.take(pa.array(owner)), pc.cast(pa.array(index), pa.string()), ""
    )
    ingested = np.array([record.header.ingested_at for record in records], dtype=np.int64)
    ingested_at = pa.array(ingested[owner], pa.timestamp("us", tz="UTC"))
    return event_ids, ingested_at


class _Scratch:
    """Where a batch's events are joined for DuckDB to read: a file DuckDB opens by path.

    On Linux, one in-memory file (memfd) per writer, overwritten by each batch and cut to
    its length: its pages are kept from one flush to the next. A file on disk, new for
    each batch, would be written back to disk if it lived long enough, and its pages are
    taken afresh from the kernel every time: on a virtual machine that hands freed memory
    back to its host, writing 300 MB of events to a new file took 0.5-0.8 s of a flush
    where the memfd takes 0.06 s (bench/processing.py). Elsewhere, that file on disk.
    """

    def __init__(self, folder: Path, fd: int | None) -> None:
        self.folder = folder
        self._fd = fd
        self.path = Path(f"/proc/self/fd/{fd}") if fd is not None else self._new_path()
        # One batch at a time: `fill`, DuckDB's reads, `release`.
        self.lock = threading.Lock()

    def _new_path(self) -> Path:
        return self.folder / f"{uuid.uuid4().hex}.json"

    @classmethod
    def create(cls, folder: Path, *, in_memory: bool = True) -> _Scratch:
        memfd_create = getattr(os, "memfd_create", None)
        if in_memory and memfd_create is not None:
            try:
                fd = memfd_create("openenrich-scratch", os.MFD_CLOEXEC)
            except OSError:
                pass
            else:
                if os.path.exists(f"/proc/self/fd/{fd}"):
                    return cls(folder, fd)
                os.close(fd)
        return cls(folder, None)

    def fill(self, payloads: Sequence[bytes]) -> Layout:
        """The payloads' events written to `path`, replacing what it held."""
        if self._fd is None:
            with open(self.path, "wb") as out:
                return _join(out, payloads)
        with os.fdopen(os.dup(self._fd), "wb") as out:
            out.seek(0)
            layout = _join(out, payloads)
            out.truncate()
        return layout

    def release(self) -> None:
        """The batch is read: a file on disk goes (a memfd keeps its pages for the next)."""
        if self._fd is None:
            self.path.unlink(missing_ok=True)
            self.path = self._new_path()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _join(out: BinaryIO, payloads: Sequence[bytes]) -> Layout:
    """The payloads' events written to `out`, one per line (`a\nb`, `c` -> `a\nb\nc`)
    or, if one of them is an array, as one array; DuckDB's name for the layout
    (`newline_delimited` or `array`)."""
    if not any(payload_is_array(payload) for payload in payloads):
        for index, payload in enumerate(payloads):
            if index:
                out.write(b"\n")
            out.write(payload)
        return "newline_delimited"
    out.write(b"[")
    first = True
    for payload in payloads:
        inner = payload_as_array(payload).strip()[1:-1].strip()
        if not inner:
            continue
        if not first:
            out.write(b",")
        out.write(inner)
        first = False
    out.write(b"]")
    return "array"


def _normalised(payload: bytes) -> bytes:
    """The same events with duplicate keys resolved (last wins) and our fields removed."""
    events = msgspec.json.decode(payload_as_array(payload))
    cleaned = [
        {key: value for key, value in event.items() if key not in RESERVED}
        if isinstance(event, dict)
        else {"_value": event}
        for event in events
    ]
    return msgspec.json.encode(cleaned)


def _boundaries(records: Sequence[Record]) -> pa.Table:
    starts, lsns, nodes, times, counts = [], [], [], [], []
    row = 0
    for record in records:
        starts.append(row)
        lsns.append(record.header.lsn)
        nodes.append(record.node[-12:])
        times.append(record.header.ingested_at)
        counts.append(record.header.count)
        row += record.header.count
    return pa.table(
        {
            "start_row": pa.array(starts, pa.int64()),
            "lsn": pa.array(lsns, pa.int64()),
            "node": pa.array(nodes, pa.string()),
            "ingested_at": pa.array(times, pa.int64()),
            "count": pa.array(counts, pa.int64()),
        }
    )


def _nulls(table: pa.Table, name: str) -> int:
    if name not in table.column_names:
        return int(table.num_rows)
    return int(table.column(name).null_count)


def _summarise(path: Path, columns: Mapping[str, str]) -> WrittenBatch:
    metadata = pq.read_metadata(path)
    present = dict.fromkeys(columns, 0)
    index = {metadata.schema.column(i).name: i for i in range(metadata.num_columns)}
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for name in columns:
            position = index.get(name)
            if position is None:
                continue
            statistics = row_group.column(position).statistics
            nulls = (
                statistics.null_count if statistics is not None and statistics.has_null_count else 0
            )
            present[name] += row_group.num_rows - nulls
    return WrittenBatch(
        rows=metadata.num_rows,
        columns=[Column(name, kind, present[name]) for name, kind in columns.items()],
    )


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _path_literal(path: Path) -> str:
    return str(path).replace("'", "''")


_SCRATCH_FILE = re.compile(r' in file "[^"]*"')


def _first_line(error: Exception) -> str:
    """DuckDB's message without our scratch file's name, which means nothing to a user."""
    return _SCRATCH_FILE.sub("", str(error).strip().splitlines()[0])[:300]
