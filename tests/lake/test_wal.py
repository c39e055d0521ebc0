"""The write-ahead log on its own: group commit, framing, torn tails, segments."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openenrich.lake.wal import Record, RecordHeader, WriteAheadLog, read_records
from openenrich.nodes import NodeDirectory

pytestmark = pytest.mark.anyio


def header(lsn: int) -> RecordHeader:
    return RecordHeader(lsn, "org", "live", "s", "data", 1_000 + lsn, 1, 0, 0, 1)


async def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    durable: list[Record] = []
    log = WriteAheadLog(
        NodeDirectory.claim(tmp_path),
        segment_bytes=1 << 20,
        group_commit_seconds=0.002,
        on_durable=durable.extend,
    )
    log.start()
    records = await asyncio.gather(*(log.append(header, b'[{"n":%d}]' % n) for n in range(200)))
    await log.close()
    assert [r.header.lsn for r in records] == list(range(200))
    assert [r.header.lsn for r in durable] == list(range(200))  # in log order
    assert log.syncs < 50, f"{log.syncs} fsyncs for 200 concurrent appends"
    (segment,) = tmp_path.glob("0/*.wal")
    assert [r.payload for r in read_records(segment, "x")] == [
        b'[{"n":%d}]' % n for n in range(200)
    ]


async def test_a_torn_tail_is_ignored_and_lsns_continue(tmp_path: Path) -> None:
    first = WriteAheadLog(
        NodeDirectory.claim(tmp_path),
        segment_bytes=1 << 20,
        group_commit_seconds=0,
        on_durable=lambda records: None,
    )
    first.start()
    for n in range(3):
        await first.append(header, b"[%d]" % n)
    await first.close()
    (segment,) = tmp_path.glob("0/*.wal")
    with segment.open("ab") as file:
        file.write(b"\x40\x00\x00\x00garbage")  # a record cut short by a crash

    second = WriteAheadLog(
        NodeDirectory.claim(tmp_path),
        segment_bytes=1 << 20,
        group_commit_seconds=0,
        on_durable=lambda records: None,
    )
    assert [r.payload for r in second.recovered()] == [b"[0]", b"[1]", b"[2]"]
    second.start()
    record = await second.append(header, b"[3]")
    await second.close()
    assert record.header.lsn == 3


async def test_segments_rotate_and_are_released(tmp_path: Path) -> None:
    log = WriteAheadLog(
        NodeDirectory.claim(tmp_path),
        segment_bytes=64,
        group_commit_seconds=0,
        on_durable=lambda records: None,
    )
    log.start()
    for _ in range(5):
        await log.append(header, b"[" + b"1" * 80 + b"]")
    segments = sorted(p.name for p in tmp_path.glob("0/*.wal"))
    assert len(segments) >= 4
    released = log.release_before(3)
    assert released
    for path in released:
        path.unlink()
    left = sorted(p.name for p in tmp_path.glob("0/*.wal"))
    assert all(int(name[:16]) >= 2 for name in left)  # segments holding LSN 3 and later stay
    for path in log.release_before(log.next_lsn):
        path.unlink()
    assert len(list(tmp_path.glob("0/*.wal"))) == 1  # the active segment always stays
    await log.close()


def test_each_process_gets_its_own_log(tmp_path: Path) -> None:
    first = NodeDirectory.claim(tmp_path)
    second = NodeDirectory.claim(tmp_path)
    assert (first.path.name, second.path.name) == ("0", "1")
    assert first.node_id != second.node_id
    node_id = first.node_id
    first.release()
    again = NodeDirectory.claim(tmp_path)
    assert (again.path.name, again.node_id) == ("0", node_id)  # the id stays with the folder
    again.release()
    second.release()
