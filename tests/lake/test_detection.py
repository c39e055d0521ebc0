"""Column types detected over every event of a batch, DuckDB's detection mapped onto ours,
on real records and real files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from openenrich.lake.parquet import ParquetWriter, UnreadableBatch
from openenrich.lake.wal import Record, RecordHeader

NOW_US = 1_765_000_000_000_000


def record(events: list[Any], lsn: int = 1, *, array: bool = False) -> Record:
    """A log record as ingest writes it (one event per line), or as a JSON array (dead
    letters, and records of earlier versions)."""
    header = RecordHeader(lsn, "org", "live", "s", "data", NOW_US, len(events), 0, 0, 1)
    if array:
        return Record("node-a", header, orjson.dumps(events))
    return Record("node-a", header, b"\n".join(orjson.dumps(event) for event in events))


# Which records of a run are arrays: none, all, or some (a log written across an upgrade).
LAYOUTS = {
    "lines": (False, False, False),
    "arrays": (True, True, True),
    "mixed": (True, False, True),
}


@pytest.fixture(params=[True, False], ids=["scratch in memory", "scratch on disk"])
def writer(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ParquetWriter]:
    made = ParquetWriter(tmp_path / "scratch", scratch_in_memory=request.param)
    yield made
    made.close()


def test_a_batch_reads_its_own_events_only_and_leaves_no_scratch_file(
    writer: ParquetWriter, tmp_path: Path
) -> None:
    """The scratch file is reused batch after batch: a smaller batch after a larger one
    must not see the end of the larger one."""
    large = [{"n": n, "text": "x" * 100} for n in range(2_000)]
    assert writer.read([record(large)]).table.num_rows == 2_000
    small = writer.read([record([{"n": 7}, {"n": 8}], lsn=2)])
    assert small.table.column("n").to_pylist() == [7, 8]
    assert list(small.columns) == ["n"]
    destination = tmp_path / "out.parquet"
    written = writer.write([record([{"n": 9}], lsn=3)], destination)
    assert written.rows == 1
    assert pq.read_table(destination).column("n").to_pylist() == [9]
    assert list((tmp_path / "scratch").iterdir()) == []


CASES: dict[str, tuple[list[Any], str]] = {
    "integers": ([1, 2], "int64"),
    "negative and positive integers": ([-1, 2], "int64"),
    "integers and decimals": ([1, 2.5], "float64"),
    "decimals": ([1.5, 2.5], "float64"),
    "strings": (["a", None], "string"),
    "dates stay strings": (["2024-01-01", "2024-02-02"], "string"),
    "booleans": ([True, False], "boolean"),
    "objects": ([{"a": 1}, {"b": "x"}], "json"),
    "arrays": ([[1], [2, 3]], "json"),
    "empty objects": ([{}, {}], "json"),
    "objects and arrays": ([{"a": 1}, [1]], "json"),
    "strings and integers": (["a", 1], "json"),
    "booleans and integers": ([True, 1], "json"),
    "strings and objects": (["x", {"a": 1}], "json"),
    "only nulls": ([None, None], "json"),
    "an integer past int64": ([2**63 + 5, 1], "json"),
}


@pytest.mark.parametrize("array", [False, True], ids=["lines", "array"])
@pytest.mark.parametrize("case", CASES)
def test_each_kind_of_value_gets_its_type(writer: ParquetWriter, case: str, array: bool) -> None:
    values, expected = CASES[case]
    events = [{"k": value, "n": i} for i, value in enumerate(values)]
    batch = writer.read([record(events, array=array)])
    assert batch.columns["k"] == expected
    assert batch.table.num_rows == len(values)


def test_columns_come_in_the_order_keys_first_appear(writer: ParquetWriter) -> None:
    batch = writer.read(
        [record([{"b": 1, "a": 2}, {"c": 3, "b": 1}]), record([{"d": 1, "a": 5}], lsn=2)]
    )
    assert list(batch.columns) == ["b", "a", "c", "d"]
    assert batch.table.column_names == ["b", "a", "c", "d", "_event_id", "_ingested_at"]


def test_what_does_not_fit_a_column(writer: ParquetWriter, tmp_path: Path) -> None:
    # Keys equal but for case: DuckDB names the second one apart, and reads no value into
    # it (a known gap, in docs/api.md).
    batch = writer.read([record([{"A": 1, "a": 2}])])
    assert list(batch.columns) == ["A", "a_1"]
    assert batch.table.column("A").to_pylist() == [1]
    # An integer past int64 on a file written the same way: kept whole, as JSON.
    written = writer.write([record([{"big": 2**63 + 5}, {"big": -1}])], tmp_path / "out.parquet")
    assert {column.name: column.type for column in written.columns} == {"big": "json"}
    assert pq.read_table(tmp_path / "out.parquet").column("big").to_pylist() == [
        str(2**63 + 5),
        "-1",
    ]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_read_batch_is_what_a_plain_write_stores(
    writer: ParquetWriter, tmp_path: Path, layout: str
) -> None:
    """Processing reads events into Arrow (ids and ingest times built there); a stream
    without processing has DuckDB write them. Both give the same rows, however the
    records hold their events."""
    records = [
        record([{"k": i, "s": f"v{i}\n"} for i in range(n)], lsn=lsn, array=array)
        for (lsn, n), array in zip(((3, 2), (9, 0), (12, 3)), LAYOUTS[layout], strict=True)
    ]
    read = writer.read(records)
    writer.write(records, tmp_path / "plain.parquet")
    assert read.table.equals(pq.read_table(tmp_path / "plain.parquet"))
    assert read.table.column("s").to_pylist() == ["v0\n", "v1\n", "v0\n", "v1\n", "v2\n"]
    assert read.table.column("_event_id").to_pylist() == [
        "node-a-3-0",
        "node-a-3-1",
        "node-a-12-0",
        "node-a-12-1",
        "node-a-12-2",
    ]


def test_a_record_holding_fewer_events_than_its_header_says_is_unreadable(
    writer: ParquetWriter,
) -> None:
    short = Record("node-a", record([{"k": 1}]).header, orjson.dumps([]))
    with pytest.raises(UnreadableBatch):
        writer.read([record([{"k": 1}]), short])
    assert writer.unreadable(short) == "the record holds 0 events, its header says 1"
