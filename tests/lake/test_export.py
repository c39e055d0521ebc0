"""Reading a lake file back as JSON event batches: real Parquet files written by DuckDB
with the lake's column types."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson

from openenrich.config import Settings
from openenrich.lake.export import event_batches
from openenrich.lake.storage import LakeStorage


def _write(storage: LakeStorage, relative: str, rows: int) -> None:
    path = Path(storage.full_path(relative))
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.sql(
        f"""COPY (
            SELECT i AS n,
                   repeat('x', CASE WHEN i = 7 THEN 3000 ELSE 10 END) AS text,
                   CASE WHEN i % 2 = 0 THEN json_object('i', i) END AS props,
                   make_timestamptz(2026, 2, 1, 10, 0, i::DOUBLE) AS at
            FROM range({rows}) AS t(i)
        ) TO '{path}' (FORMAT parquet)"""
    )


def test_batches_hold_every_column_and_are_cut_at_the_same_rows(tmp_path: Path) -> None:
    storage = LakeStorage(Settings(data_dir=tmp_path / "data"))
    _write(storage, "o/live/s/date=2026-02-01/f.parquet", 20)

    def batches(start_row: int = 0) -> list[tuple[int, int, list[dict[str, object]]]]:
        return [
            (b.first_row, b.count, b.events())
            for b in event_batches(
                storage,
                "o/live/s/date=2026-02-01/f.parquet",
                max_events=4,
                max_bytes=1000,
                start_row=start_row,
            )
        ]

    whole = batches()
    # Four a batch, except that the 3 KB event (n = 7) goes alone, over the byte limit.
    assert [(first, count) for first, count, _ in whole] == [
        (0, 4),
        (4, 3),
        (7, 1),
        (8, 4),
        (12, 4),
        (16, 4),
    ]
    events = [event for _, _, chunk in whole for event in chunk]
    assert [event["n"] for event in events] == list(range(20))
    assert events[0] == {"n": 0, "text": "x" * 10, "props": {"i": 0}, "at": "2026-02-01T10:00:00Z"}
    assert events[1]["props"] is None
    assert events[3]["at"] == "2026-02-01T10:00:03Z"
    # Resuming after a batch gives the batches that followed it, cut the same way.
    assert batches(start_row=8) == whole[3:]
    assert batches(start_row=20) == []
    assert all(len(orjson.dumps(chunk)) <= 1000 for _, count, chunk in whole if count > 1)
