"""Reading a lake file back as JSON events, in batches: what a stream replay and webhook
forwarding send.

An event is every column of its row, in the file's column order: timestamps in ISO 8601
(UTC, `Z`), JSON columns as nested JSON (not as the text they are stored as), missing
values as `null`. A batch holds the events of one file, at most `max_events` of them and
at most `max_bytes` of JSON (an event larger than that goes alone). The batches of a file
are always cut at the same rows, so whoever resumes after `first_row + count` events of a
file sends the same batches again.

Synchronous (pyarrow reads a local file or S3): call it from a thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from openenrich.lake.storage import LakeStorage

_ROWS_PER_READ = 8192
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


@dataclass(frozen=True, slots=True)
class EventBatch:
    first_row: int  # the row of the file its first event is
    count: int
    body: bytes  # the events, as one JSON array

    def events(self) -> list[Any]:
        return list(orjson.loads(self.body))


def _is_json(type_: pa.DataType) -> bool:
    return getattr(type_, "extension_name", None) == "arrow.json"


def event_batches(
    storage: LakeStorage, relative: str, *, max_events: int, max_bytes: int, start_row: int = 0
) -> Iterator[EventBatch]:
    """The file's events from `start_row` on, in batches."""
    file = pq.ParquetFile(storage.full_path(relative), filesystem=storage.fs)
    json_columns = [field.name for field in file.schema_arrow if _is_json(field.type)]
    pending: list[bytes] = []
    size = 2  # the brackets
    first = start_row
    row = 0
    for records in file.iter_batches(batch_size=_ROWS_PER_READ):
        if row + records.num_rows <= start_row:
            row += records.num_rows
            continue
        skip = max(0, start_row - row)
        row += records.num_rows
        for values in records.slice(skip).to_pylist():
            for name in json_columns:
                value = values[name]
                if value is not None:
                    values[name] = orjson.Fragment(value)
            encoded = orjson.dumps(values, option=_OPTIONS)
            if pending and (len(pending) >= max_events or size + len(encoded) + 1 > max_bytes):
                yield EventBatch(first, len(pending), b"[" + b",".join(pending) + b"]")
                first += len(pending)
                pending, size = [], 2
            pending.append(encoded)
            size += len(encoded) + 1
    if pending:
        yield EventBatch(first, len(pending), b"[" + b",".join(pending) + b"]")
