"""The fields a few events hold, typed as the Parquet writer would type them.

The writer detects one type per column over a whole run of records, so a run says which
fields it holds but not which of its records brought them. Schema tracking needs that for
one record only, the first a stream ever flushes (its events are the baseline), so it is
asked for here, on that record alone, rather than worked out per record on every flush.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb

from openenrich.lake.parquet import RESERVED, Column, detected_type
from openenrich.lake.wal import payload_as_array


def describe_events(payload: bytes, scratch: Path) -> list[Column] | None:
    """The fields of `payload` (the events of a log record, see wal.py) with the type
    the writer would give them over these events alone and how many events have a value;
    None when DuckDB cannot read them as they are (the writer then normalises them, and
    the caller should not guess). Blocks: call it in a thread."""
    scratch.mkdir(parents=True, exist_ok=True)
    source = scratch / f"{uuid.uuid4().hex}.json"
    db = duckdb.connect(
        config={
            "threads": 1,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    try:
        source.write_bytes(payload_as_array(payload))
        # The writer's detection options (parquet.py), over these events only.
        events = "read_json(?, format = 'array', maximum_depth = 2, sample_size = -1)"
        described = db.execute(f"DESCRIBE SELECT * FROM {events}", [str(source)]).fetchall()  # noqa: S608
        names = [str(row[0]) for row in described if str(row[0]) not in RESERVED]
        if not names:
            return []
        counts = ", ".join(f'count("{name.replace(chr(34), chr(34) * 2)}")' for name in names)
        present = db.execute(f"SELECT {counts} FROM {events}", [str(source)]).fetchone()  # noqa: S608
    except duckdb.Error:
        return None
    finally:
        db.close()
        source.unlink(missing_ok=True)
    assert present is not None
    types = {str(row[0]): detected_type(str(row[1])) for row in described}
    return [
        Column(name, types[name], int(count)) for name, count in zip(names, present, strict=True)
    ]
