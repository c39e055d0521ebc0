"""The write-ahead log: accepted events are on disk, fsynced, before the answer goes out.

Each server process owns one log directory (a "node", claimed with an flock, so several
processes can share a data folder). A node is a sequence of segment files named after the
LSN (log sequence number) of their first record:

    wal/0/node              the node's permanent id (events and files are named after it)
    wal/0/lock              held (flock) by the process that owns the node
    wal/0/0000000000000000.wal
    wal/0/0000000000004711.wal   <- the active segment, always kept

A record is `[u32 length][u32 crc32][u16 header length][msgpack header][payload]`. The
payload is the events, one JSON object per line (NDJSON: ingest keeps no newline inside an
event), or a JSON array of them (dead letters, and data written by earlier versions); its
first byte tells which (`payload_is_array`, `payload_as_array`).

A crash can leave a torn record at the end of the active segment: recovery stops at the
first record whose length or checksum is wrong, and the process starts a fresh segment.

Group commit: `append` queues a record and waits; one committer writes everything queued
and fsyncs it once, in a worker thread. While one fsync runs, the next batch gathers, so
concurrency batches itself; `group_commit_seconds` adds a short window on top.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from openenrich.fsync import fsync_dir
from openenrich.nodes import NodeDirectory

logger = logging.getLogger("openenrich.lake.wal")

_FRAME = struct.Struct("<II")
_HEADER_LENGTH = struct.Struct("<H")
_SUFFIX = ".wal"


class LogUnavailable(Exception):
    """The log could not be written (disk full, I/O error): nothing more is accepted."""


@dataclass(frozen=True, slots=True)
class RecordHeader:
    lsn: int
    org_id: str
    environment: str
    stream_id: str
    kind: str  # "data" or "dlq"
    ingested_at: int  # Unix microseconds; never decreases along the log
    count: int  # events in the payload
    event_time_min: int  # Unix microseconds
    event_time_max: int
    schema_version: int  # the stream's version the events were validated against
    # The writer's name for the record, kept with it (ingest: the request's Idempotency-Key,
    # so that after a crash the log says whether that request's events were stored).
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    node: str
    header: RecordHeader
    payload: bytes  # `count` events, one per line, or as a JSON array


def payload_is_array(payload: bytes) -> bool:
    return payload[:1] == b"["


def payload_as_array(payload: bytes) -> bytes:
    """The events of a payload as one JSON array."""
    if payload_is_array(payload):
        return payload
    return b"[" + payload.replace(b"\n", b",") + b"]"


def payload_lines(events: Sequence[bytes | memoryview | msgspec.Raw], source: bytes) -> bytes:
    """The payload of `events` (raw JSON objects cut from `source`): one per line. JSON
    allows a newline only as whitespace between tokens, so a space stands in for it."""
    if b"\n" not in source:  # compact JSON, what clients mostly send: nothing to replace
        return b"\n".join(events)
    return b"\n".join(bytes(event).replace(b"\n", b" ") for event in events)


def encode_record(header: RecordHeader, payload: bytes) -> bytes:
    head = msgspec.msgpack.encode(
        (
            header.lsn,
            header.org_id,
            header.environment,
            header.stream_id,
            header.kind,
            header.ingested_at,
            header.count,
            header.event_time_min,
            header.event_time_max,
            header.schema_version,
            *((header.tag,) if header.tag is not None else ()),
        )
    )
    body = _HEADER_LENGTH.pack(len(head)) + head + payload
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def read_records(path: Path, node: str) -> Iterator[Record]:
    """The intact records of one segment, stopping at the first torn or corrupt one."""
    data = path.read_bytes()
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, checksum = _FRAME.unpack_from(data, offset)
        body = data[offset + _FRAME.size : offset + _FRAME.size + length]
        if len(body) != length or zlib.crc32(body) != checksum:
            logger.warning(
                "wal %s: torn or corrupt record at byte %d; stopping there", path, offset
            )
            return
        (head_length,) = _HEADER_LENGTH.unpack_from(body)
        fields = msgspec.msgpack.decode(
            body[_HEADER_LENGTH.size : _HEADER_LENGTH.size + head_length]
        )
        yield Record(node, RecordHeader(*fields), body[_HEADER_LENGTH.size + head_length :])
        offset += _FRAME.size + length


@dataclass(slots=True)
class _Segment:
    first_lsn: int
    path: Path


def _segments(directory: Path) -> list[_Segment]:
    found = [
        _Segment(int(path.stem), path)
        for path in directory.glob(f"*{_SUFFIX}")
        if path.stem.isdigit()
    ]
    return sorted(found, key=lambda segment: segment.first_lsn)


def node_records(node: NodeDirectory) -> Iterator[Record]:
    """Every intact record in a log directory, oldest first."""
    for segment in _segments(node.path):
        yield from read_records(segment.path, node.node_id)


def orphan_logs(base: Path, own: NodeDirectory) -> list[NodeDirectory]:
    """Log directories left by processes that died and were not started again."""
    return NodeDirectory.orphans(base, own, lambda path: any(path.glob(f"*{_SUFFIX}")))


@dataclass(slots=True)
class _Pending:
    record: Record
    frame: bytes
    done: asyncio.Future[None]


class WriteAheadLog:
    def __init__(
        self,
        directory: NodeDirectory,
        *,
        segment_bytes: int,
        group_commit_seconds: float,
        on_durable: Callable[[list[Record]], None],
    ) -> None:
        self.directory = directory
        self.node_id = directory.node_id
        self._segment_bytes = segment_bytes
        self._window = group_commit_seconds
        self._on_durable = on_durable
        self._segments = _segments(directory.path)
        self._segments_lock = threading.Lock()
        self._next_lsn = 0
        self._last_ingested_at = 0
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._fd = -1
        self._active_size = 0
        self._failure: BaseException | None = None
        self._closing = False
        self._committer: asyncio.Task[None] | None = None
        self.syncs = 0  # fsyncs done; with concurrency, far fewer than records

    def recovered(self) -> Iterator[Record]:
        """The records this node wrote before the process stopped; call before `start`."""
        for record in node_records(self.directory):
            self._next_lsn = max(self._next_lsn, record.header.lsn + 1)
            self._last_ingested_at = max(self._last_ingested_at, record.header.ingested_at)
            yield record

    def start(self) -> None:
        if self._segments:
            # An empty newest segment still holds the LSN high-water mark in its name.
            self._next_lsn = max(self._next_lsn, self._segments[-1].first_lsn)
        self._open_segment(self._next_lsn)
        self._committer = asyncio.get_running_loop().create_task(self._commit_loop())

    @property
    def next_lsn(self) -> int:
        return self._next_lsn

    def ingest_time(self, now_us: int) -> int:
        """A timestamp for the next record that never goes backwards along the log."""
        self._last_ingested_at = max(self._last_ingested_at, now_us)
        return self._last_ingested_at

    async def append(self, make_header: Callable[[int], RecordHeader], payload: bytes) -> Record:
        """Log one record and return once it is on disk."""
        if self._failure is not None:
            raise LogUnavailable(str(self._failure))
        if self._closing:
            raise LogUnavailable("the server is shutting down")
        header = make_header(self._next_lsn)
        self._next_lsn += 1
        record = Record(self.node_id, header, payload)
        pending = _Pending(
            record, encode_record(header, payload), asyncio.get_running_loop().create_future()
        )
        self._pending.append(pending)
        self._wakeup.set()
        await asyncio.shield(pending.done)
        return record

    async def _commit_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            if self._window:
                await asyncio.sleep(self._window)
            batch, self._pending = self._pending, []
            self._wakeup.clear()
            if not batch:
                if self._closing:
                    return
                continue
            try:
                await asyncio.to_thread(
                    self._write, [item.frame for item in batch], batch[0].record.header.lsn
                )
            except BaseException as error:  # the log's state is unknown: stop accepting
                logger.exception("write-ahead log failed; no more events are accepted")
                self._failure = error
                for item in batch + self._pending:
                    if not item.done.done():
                        item.done.set_exception(LogUnavailable(str(error)))
                self._pending = []
                return
            self._on_durable([item.record for item in batch])
            for item in batch:
                if not item.done.done():
                    item.done.set_result(None)
            if self._closing and not self._pending:
                return

    def _write(self, frames: list[bytes], first_lsn: int) -> None:
        if self._active_size >= self._segment_bytes:
            self._open_segment(first_lsn)
        view = b"".join(frames)
        written = 0
        while written < len(view):
            written += os.write(self._fd, view[written:])
        os.fdatasync(self._fd)
        self._active_size += written
        self.syncs += 1

    def _open_segment(self, first_lsn: int) -> None:
        path = self.directory.path / f"{first_lsn:016d}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_dir(self.directory.path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._active_size = os.fstat(fd).st_size
        with self._segments_lock:
            if not self._segments or self._segments[-1].path != path:
                self._segments.append(_Segment(first_lsn, path))

    def release_before(self, lsn: int) -> list[Path]:
        """Give up the segments whose every record has an LSN below `lsn` (all flushed);
        the active segment stays. Returns their paths for the caller to delete (deleting a
        large file takes milliseconds: not on the event loop)."""
        with self._segments_lock:
            keep_from = 0
            for index in range(len(self._segments) - 1):
                if self._segments[index + 1].first_lsn <= lsn:
                    keep_from = index + 1
            doomed, self._segments = self._segments[:keep_from], self._segments[keep_from:]
        return [segment.path for segment in doomed]

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._committer is not None:
            await self._committer
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.directory.release()
