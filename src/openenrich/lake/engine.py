"""Accepted events, from the write-ahead log to Parquet files in the lake.

    append ──▶ WAL (fsync, group commit) ──▶ buffer per (node, tenant, stream, kind)
                                                   │  N events, B bytes or T seconds
                                                   ▼
                      Parquet file per day run ──▶ publish (atomic) ──▶ manifest row
                                                   │
                                                   ▼
                                     WAL segments below every buffer are deleted

A file is named `{node}-{first LSN}` after the first record it holds. After a crash,
recovery puts every record above a stream's last manifest LSN back in its buffer; the
next flush starts from the same first record and so writes the same file names, which
replaces any file that was published but not yet in the manifest. Nothing is lost and
nothing is written twice.

A stream may process its events on the way (`Processors`, given by the streams surface):
the run is then read into one Arrow table, processed in the flush thread, and what the
processing keeps for the lake is written under the same name; what it does besides (rows
for destinations, enricher state) is recorded in the manifest's transaction.

A record DuckDB cannot read at all is quarantined, never retried for ever: its bytes go to
`{data_dir}/quarantine/{node}/{lsn}.wal` (the log's record format), a `lake_quarantine`
row names it (in the same transaction as the manifest rows of the run it was in), the
rest of the run is written, and recovery skips it. `on_quarantined` tells the surface.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.fsync import fsync_dir
from openenrich.ids import new_id
from openenrich.lake.models import LakeFile, QuarantinedRecord
from openenrich.lake.parquet import (
    DLQ_COLUMNS,
    Column,
    EventBatch,
    ParquetWriter,
    UnreadableBatch,
    WrittenBatch,
)
from openenrich.lake.storage import LakeStorage
from openenrich.lake.wal import (
    LogUnavailable,
    Record,
    RecordHeader,
    WriteAheadLog,
    encode_record,
    node_records,
    orphan_logs,
)
from openenrich.nodes import NodeDirectory

logger = logging.getLogger("openenrich.lake")

KINDS = ("data", "dlq")


class FlushFailed(Exception):
    """Writing a stream's buffered events failed (the lake's storage, or the stream's
    processing); they stay in the log and the flusher tries again."""


class BufferFull(Exception):
    """More events wait for Parquet than `buffer_max_bytes`: the client should retry."""


@dataclass(frozen=True, slots=True)
class BufferKey:
    node: str
    org_id: str
    environment: str
    stream_id: str
    kind: str


@dataclass(slots=True)
class StreamBuffer:
    key: BufferKey
    records: list[Record] = field(default_factory=list)
    events: int = 0
    bytes: int = 0
    since: float = 0.0  # monotonic time of the oldest record
    retry_at: float = 0.0  # after a failed flush


@dataclass(frozen=True, slots=True)
class FlushedFile:
    org_id: str
    environment: str
    stream_id: str
    kind: str
    day: date
    path: str  # relative to the lake root
    location: str  # the path or s3:// URL users read
    rows: int
    bytes: int
    min_event_time: datetime
    max_event_time: datetime
    columns: list[Column]
    # The JSON array of the file's first log record, as sent: what schema tracking takes
    # as a stream's baseline (a file holds the union of its records' fields).
    first_events: builtins.bytes = b"[]"  # `bytes` is a field of this class


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A log record set aside because it cannot be written as Parquet."""

    key: BufferKey
    lsn: int
    events: int
    path: str  # relative to the data folder
    reason: str


class BatchProcessor(Protocol):
    """What happens to one run of a stream's events between the log and the lake. One
    object per run: it keeps what `process` decided until `record` writes it down."""

    async def prepare(self, batch: EventBatch) -> None:
        """Before `process`, on the event loop: read what it needs (enricher state)."""

    def process(self, batch: EventBatch, name: str) -> EventBatch:
        """In the flush thread: the rows (and columns) the lake keeps. `name` names the
        run's file; the same records always come with the same name."""

    async def record(self, session: AsyncSession) -> None:
        """In the transaction that records the run's file: write down its side effects."""

    def finish(self, committed: bool) -> None:
        """After that transaction (or after a failure before it)."""


@dataclass(slots=True)
class _WrittenRun:
    file: tuple[FlushedFile, dict[str, object]] | None  # None: every record was quarantined
    quarantined: list[Quarantined]
    processors: list[BatchProcessor] = field(default_factory=list)


# What the streams package tells the engine, and what the engine tells it back.
DeclaredColumns = Callable[[BufferKey, int], Awaitable[Mapping[str, str] | None]]
OnFlushed = Callable[[AsyncSession, list[FlushedFile]], Awaitable[None]]
OnFlushError = Callable[[BufferKey, BaseException], None]
OnQuarantined = Callable[[list[Quarantined]], None]
# The processing of a run of data events (None: stored as sent); the int is the stream
# configuration version every record was checked against, None when they differ.
Processors = Callable[[BufferKey, int | None], Awaitable[BatchProcessor | None]]


async def _no_processing(key: BufferKey, version: int | None) -> BatchProcessor | None:
    return None


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _lower_priority() -> None:
    # A high nice value, not SCHED_IDLE: under full load an idle-class flusher starved,
    # buffers filled and ingest had to refuse events (measured); a niced one still gets
    # a fair share.
    with contextlib.suppress(OSError, AttributeError):  # Linux: the thread's own value
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _day(micros: int) -> date:
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).date()


def _time(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, tz=UTC)


class LakeEngine:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        storage: LakeStorage,
        *,
        declared_columns: DeclaredColumns,
        on_flushed: OnFlushed,
        on_flush_error: OnFlushError,
        on_quarantined: OnQuarantined = lambda quarantined: None,
        processors: Processors = _no_processing,
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self._declared_columns = declared_columns
        self._on_flushed = on_flushed
        self._on_flush_error = on_flush_error
        self._on_quarantined = on_quarantined
        self._processors = processors
        self._quarantine = settings.data_dir / "quarantine"
        self._writer = ParquetWriter(settings.data_dir / "scratch", memory_limit="256MB")
        # Writing Parquet is background work: one thread, at a lower scheduling priority,
        # so a flush takes longer under load instead of making requests wait.
        self._background = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lake-flush", initializer=_lower_priority
        )
        self._buffers: dict[BufferKey, StreamBuffer] = {}
        self._buffered_bytes = 0
        self._orphans: dict[str, NodeDirectory] = {}
        self._flush_lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._wal: WriteAheadLog | None = None
        # When this process took its log: a record's writer that started before it is gone.
        self.started_at = datetime.now(UTC)
        # The tagged records found in the logs at start, by (node, org_id, environment,
        # tag): what a caller resolves its interrupted requests with (`recovered_tags`).
        self._recovered_tags: dict[tuple[str, str, str, str], list[RecordHeader]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.started_at = datetime.now(UTC)
        own = NodeDirectory.claim(self.settings.wal)
        self._wal = WriteAheadLog(
            own,
            segment_bytes=self.settings.wal_segment_bytes,
            group_commit_seconds=self.settings.wal_group_commit_ms / 1000,
            on_durable=self._buffer_records,
        )
        recovered = await self._recover(own.node_id, self._wal.recovered())
        for orphan in orphan_logs(self.settings.wal, own):
            self._orphans[orphan.node_id] = orphan
            recovered += await self._recover(orphan.node_id, node_records(orphan))
        if recovered:
            logger.info("recovered %d log records not yet in the lake", recovered)
        self._wal.start()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        if self._orphans:
            self._wakeup.set()

    async def stop(self) -> None:
        """Flush everything, then close the log (whatever cannot be flushed stays in it)."""
        if self._flusher is not None:
            async with self._flush_lock:  # let a flush under way finish first
                self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        try:
            await self.flush_all()
        except Exception:
            logger.exception("flush at shutdown failed; the events stay in the log")
        if self._wal is not None:
            await self._wal.close()
        self._background.shutdown(wait=True)
        self._writer.close()

    @property
    def node_id(self) -> str:
        assert self._wal is not None
        return self._wal.node_id

    # -- appending ---------------------------------------------------------------------

    async def append(
        self,
        org_id: str,
        environment: str,
        stream_id: str,
        kind: str,
        payload: bytes,
        *,
        count: int,
        event_time: tuple[int, int] | None = None,
        schema_version: int = 0,
        now_us: int | None = None,
        tag: str | None = None,
    ) -> Record:
        """Log `count` events (a JSON array) for a stream; returns once they are durable.

        `event_time` is the (min, max) of the events' own times in microseconds; without it
        the ingest time stands in. `tag` is kept in the record's header (`tagged`).
        """
        assert self._wal is not None
        if self._buffered_bytes >= self.settings.buffer_max_bytes:
            self._wakeup.set()
            raise BufferFull("too many events are waiting to be written; retry shortly")
        ingested_at = self._wal.ingest_time(
            now_us if now_us is not None else time.time_ns() // 1000
        )
        low, high = event_time if event_time is not None else (ingested_at, ingested_at)

        def header(lsn: int) -> RecordHeader:
            return RecordHeader(
                lsn,
                org_id,
                environment,
                stream_id,
                kind,
                ingested_at,
                count,
                low,
                high,
                schema_version,
                tag,
            )

        return await self._wal.append(header, payload)

    def recovered_tags(
        self,
    ) -> tuple[set[str], dict[tuple[str, str, str, str], list[RecordHeader]]]:
        """The logs read at start (this process's and the ones it adopted) and the tagged
        records they held, by (node, org_id, environment, tag); handed over once (the
        flusher releases those logs soon after start, so only this list remembers)."""
        assert self._wal is not None
        nodes = {self._wal.node_id, *self._orphans}
        tags, self._recovered_tags = self._recovered_tags, {}
        return nodes, tags

    async def tagged(
        self, node: str, org_id: str, environment: str, tag: str
    ) -> list[RecordHeader] | None:
        """The records `node`'s log still holds with `tag`, oldest first; None when that
        log is neither this process's nor one it adopted (another process holds it). A
        record stays in the log until a later flush releases its segment: a tag is found
        for a while after its events reach the lake, which is what a caller resolving a
        request a crash interrupted needs (streams/idempotency.py)."""
        assert self._wal is not None
        if node == self._wal.node_id:
            directory = self._wal.directory
        elif node in self._orphans:
            directory = self._orphans[node]
        else:
            return None

        def scan() -> list[RecordHeader]:
            return [
                r.header
                for r in node_records(directory)
                if (r.header.tag, r.header.org_id, r.header.environment)
                == (tag, org_id, environment)
            ]

        return await asyncio.to_thread(scan)

    def _buffer_records(self, records: list[Record]) -> None:
        """Called in log order once records are durable (or found again at recovery)."""
        due = False
        for record in records:
            header = record.header
            key = BufferKey(
                record.node, header.org_id, header.environment, header.stream_id, header.kind
            )
            buffer = self._buffers.get(key)
            if buffer is None:
                buffer = self._buffers[key] = StreamBuffer(key, since=time.monotonic())
            elif not buffer.records:
                buffer.since = time.monotonic()
            buffer.records.append(record)
            buffer.events += header.count
            buffer.bytes += len(record.payload)
            self._buffered_bytes += len(record.payload)
            due = due or self._is_due(buffer, time.monotonic())
        if due:
            self._wakeup.set()

    def buffered(self, org_id: str, environment: str, stream_id: str, kind: str = "data") -> int:
        """Events of a stream waiting in this process's buffers."""
        return sum(
            buffer.events
            for key, buffer in self._buffers.items()
            if (key.org_id, key.environment, key.stream_id, key.kind)
            == (org_id, environment, stream_id, kind)
        )

    def pending(self, org_id: str, environment: str, stream_id: str, kind: str) -> list[Record]:
        return [
            record
            for key, buffer in self._buffers.items()
            if (key.org_id, key.environment, key.stream_id, key.kind)
            == (org_id, environment, stream_id, kind)
            for record in buffer.records
        ]

    # -- flushing ----------------------------------------------------------------------

    def _is_due(self, buffer: StreamBuffer, now: float) -> bool:
        if not buffer.records or now < buffer.retry_at:
            return False
        return (
            buffer.events >= self.settings.flush_max_events
            or buffer.bytes >= self.settings.flush_max_bytes
            or now - buffer.since >= self.settings.flush_max_seconds
            or buffer.key.node in self._orphans
            or self._buffered_bytes >= self.settings.buffer_max_bytes
        )

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=0.25)
            self._wakeup.clear()
            now = time.monotonic()
            due = sorted(
                (b for b in self._buffers.values() if self._is_due(b, now)),
                key=lambda b: (
                    -b.bytes if self._buffered_bytes >= self.settings.buffer_max_bytes else b.since
                ),
            )
            for buffer in due:
                try:
                    async with self._flush_lock:
                        await self._flush_buffer(buffer)
                except Exception as error:
                    buffer.retry_at = time.monotonic() + 5
                    logger.exception("flush of %s failed; retrying in 5 s", buffer.key)
                    self._on_flush_error(buffer.key, error)

    async def flush_stream(
        self, org_id: str, environment: str, stream_id: str
    ) -> list[FlushedFile]:
        """Write everything buffered for one stream now (both kinds, every node)."""
        written: list[FlushedFile] = []
        async with self._flush_lock:
            for key, buffer in list(self._buffers.items()):
                if (key.org_id, key.environment, key.stream_id) == (org_id, environment, stream_id):
                    try:
                        written += await self._flush_buffer(buffer)
                    except Exception as error:
                        logger.exception("flush of %s failed; its events stay in the log", key)
                        self._on_flush_error(key, error)
                        raise FlushFailed(str(error) or type(error).__name__) from error
        return written

    async def flush_all(self) -> list[FlushedFile]:
        """Write every buffer; one that fails stays in the log and does not stop the rest."""
        written: list[FlushedFile] = []
        failed: Exception | None = None
        async with self._flush_lock:
            for buffer in list(self._buffers.values()):
                try:
                    written += await self._flush_buffer(buffer)
                except Exception as error:
                    logger.exception("flush of %s failed; its events stay in the log", buffer.key)
                    self._on_flush_error(buffer.key, error)
                    failed = error
        if failed is not None:
            raise failed
        return written

    async def _flush_buffer(self, buffer: StreamBuffer) -> list[FlushedFile]:
        taken = list(buffer.records)
        if not taken:
            return []
        key = buffer.key
        runs: list[list[Record]] = []
        for record in taken:  # ingest times never decrease, so each day is one run
            if runs and _day(runs[-1][0].header.ingested_at) == _day(record.header.ingested_at):
                runs[-1].append(record)
            else:
                runs.append([record])
        files: list[tuple[FlushedFile, dict[str, object]]] = []
        quarantined: list[Quarantined] = []
        processors: list[BatchProcessor] = []
        committed = False
        try:
            for run in runs:
                written = await self._write_run(key, run)
                if written.file is not None:
                    files.append(written.file)
                quarantined += written.quarantined
                processors += written.processors

            async with self.database.session() as session:
                await self._record_files(session, [row for _, row in files])
                await self._record_quarantined(session, quarantined)
                for processor in processors:
                    await processor.record(session)
                await self._on_flushed(session, [flushed for flushed, _ in files])
                await session.commit()
            committed = True
        finally:
            for processor in processors:
                processor.finish(committed)
        if quarantined:
            self._on_quarantined(quarantined)

        del buffer.records[: len(taken)]
        flushed_events = sum(record.header.count for record in taken)
        flushed_bytes = sum(len(record.payload) for record in taken)
        buffer.events -= flushed_events
        buffer.bytes -= flushed_bytes
        self._buffered_bytes -= flushed_bytes
        buffer.since = time.monotonic()
        buffer.retry_at = 0.0
        if not buffer.records:
            del self._buffers[key]
        released = self._release_log()
        if released:
            await asyncio.get_running_loop().run_in_executor(
                self._background, _unlink_all, released
            )
        return [flushed for flushed, _ in files]

    async def _write_run(self, key: BufferKey, run: list[Record]) -> _WrittenRun:
        """Write a run; if DuckDB cannot read it, quarantine the records at fault and
        write the rest (under the same file name: the run's first record names it)."""
        loop = asyncio.get_running_loop()
        processors: list[BatchProcessor] = []
        try:
            return _WrittenRun(await self._write_records(key, run, run, processors), [], processors)
        except UnreadableBatch:
            judged = await loop.run_in_executor(
                self._background, lambda: [(r, self._writer.unreadable(r)) for r in run]
            )
            faulty = [(record, reason) for record, reason in judged if reason is not None]
            if not faulty:
                raise  # not the records' fault (the scratch disk?): retried later
        quarantined = await loop.run_in_executor(self._background, self._set_aside, key, faulty)
        kept = [record for record, reason in judged if reason is None]
        file = await self._write_records(key, run, kept, processors) if kept else None
        return _WrittenRun(file, quarantined, processors)

    def _set_aside(self, key: BufferKey, faulty: list[tuple[Record, str]]) -> list[Quarantined]:
        """Copy records to the quarantine folder, durably, before the manifest forgets them."""
        folder = self._quarantine / key.node
        folder.mkdir(parents=True, exist_ok=True)
        quarantined = []
        for record, reason in faulty:
            name = f"{record.header.lsn:016d}.wal"
            staged = folder / f".{name}.tmp"
            with open(staged, "wb") as out:
                out.write(encode_record(record.header, record.payload))
                out.flush()
                os.fsync(out.fileno())
            staged.replace(folder / name)
            path = f"quarantine/{key.node}/{name}"
            logger.error(
                "log record %s/%d (%d events of stream %s) cannot be written as Parquet (%s); "
                "kept in %s",
                key.node,
                record.header.lsn,
                record.header.count,
                key.stream_id,
                reason,
                path,
            )
            quarantined.append(
                Quarantined(key, record.header.lsn, record.header.count, path, reason)
            )
        fsync_dir(folder)
        return quarantined

    async def _write_records(
        self,
        key: BufferKey,
        run: list[Record],
        records: list[Record],
        processors: list[BatchProcessor],
    ) -> tuple[FlushedFile, dict[str, object]]:
        """Write `records` (all of `run`, or what is left of it) as the run's file; a
        processor used is appended to `processors` (the caller finishes it)."""
        first = run[0].header
        day = _day(first.ingested_at)
        relative = self.storage.relative_path(
            key.org_id,
            key.environment,
            key.stream_id,
            key.kind,
            day.isoformat(),
            f"{key.node[-12:]}-{first.lsn:012d}",
        )
        declared: Mapping[str, str] | None
        processor: BatchProcessor | None = None
        if key.kind == "dlq":
            declared = DLQ_COLUMNS
        else:
            versions = {record.header.schema_version for record in records}
            version = versions.pop() if len(versions) == 1 else None
            declared = await self._declared_columns(key, version) if version is not None else None
            processor = await self._processors(key, version)
            if processor is not None:
                processors.append(processor)
        staged = self.storage.staging_path(relative)
        loop = asyncio.get_running_loop()
        received: list[Column] | None = None  # the events' columns, before processing
        try:
            if processor is None:
                batch = await loop.run_in_executor(
                    self._background,
                    functools.partial(self._writer.write, records, staged, declared=declared),
                )
            else:
                batch, received = await self._process(
                    processor, records, declared, relative, staged
                )
            size = await loop.run_in_executor(
                self._background, self.storage.publish, staged, relative
            )
        except BaseException:
            self.storage.discard(staged)
            raise
        low = _time(min(record.header.event_time_min for record in records))
        high = _time(max(record.header.event_time_max for record in records))
        flushed = FlushedFile(
            org_id=key.org_id,
            environment=key.environment,
            stream_id=key.stream_id,
            kind=key.kind,
            day=day,
            path=relative,
            location=self.storage.display_path(relative),
            rows=batch.rows,
            bytes=size,
            min_event_time=low,
            max_event_time=high,
            # What the stream's events held (schema history is about them), not what
            # processing added or dropped.
            columns=received if received is not None else batch.columns,
            first_events=records[0].payload,
        )
        row: dict[str, object] = {
            "id": new_id("file"),
            "org_id": key.org_id,
            "environment": key.environment,
            "stream_id": key.stream_id,
            "kind": key.kind,
            "day": day,
            "path": relative,
            "rows": batch.rows,
            "bytes": size,
            "min_event_time": low,
            "max_event_time": high,
            "wal_node": key.node,
            "wal_first_lsn": first.lsn,
            "wal_last_lsn": run[-1].header.lsn,
            "created_at": datetime.now(UTC),
        }
        return flushed, row

    async def _process(
        self,
        processor: BatchProcessor,
        records: list[Record],
        declared: Mapping[str, str] | None,
        relative: str,
        staged: Path,
    ) -> tuple[WrittenBatch, list[Column]]:
        """Read, process and write a run: the written file, and the columns of the events
        as they came in."""
        loop = asyncio.get_running_loop()
        events = await loop.run_in_executor(
            self._background, functools.partial(self._writer.read, records, declared=declared)
        )
        rows = events.table.num_rows
        received = [
            Column(name, kind, rows - events.table.column(name).null_count)
            for name, kind in events.columns.items()
        ]
        await processor.prepare(events)
        name = relative.rsplit("/", 1)[-1].removesuffix(".parquet")
        kept = await loop.run_in_executor(self._background, processor.process, events, name)
        written = await loop.run_in_executor(
            self._background, self._writer.write_table, kept, staged
        )
        return written, received

    async def _record_files(self, session: AsyncSession, rows: list[dict[str, object]]) -> None:
        """Insert manifest rows; a path already there (a file rewritten by recovery) is
        replaced."""
        if not rows:
            return
        insert = postgresql.insert if self.database.dialect == "postgresql" else sqlite.insert
        table = LakeFile.__table__
        assert isinstance(table, Table)
        statement = insert(table).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.path],
            set_={
                name: statement.excluded[name]
                for name in ("rows", "bytes", "min_event_time", "max_event_time", "wal_last_lsn")
            },
        )
        await session.execute(statement)

    async def _record_quarantined(
        self, session: AsyncSession, quarantined: list[Quarantined]
    ) -> None:
        if not quarantined:
            return
        insert = postgresql.insert if self.database.dialect == "postgresql" else sqlite.insert
        table = QuarantinedRecord.__table__
        assert isinstance(table, Table)
        rows = [
            {
                "id": new_id("qrn"),
                "org_id": item.key.org_id,
                "environment": item.key.environment,
                "stream_id": item.key.stream_id,
                "kind": item.key.kind,
                "wal_node": item.key.node,
                "wal_lsn": item.lsn,
                "events": item.events,
                "bytes": (self.settings.data_dir / item.path).stat().st_size,
                "path": item.path,
                "reason": item.reason[:500],
                "created_at": datetime.now(UTC),
            }
            for item in quarantined
        ]
        # Recovery after a crash before the manifest commit quarantines the same records.
        statement = insert(table).values(rows).on_conflict_do_nothing()
        await session.execute(statement)

    def _release_log(self) -> list[Path]:
        """Log segments nothing waits for (to delete); adopted logs that are done go."""
        assert self._wal is not None
        own = self._wal.node_id
        waiting = [
            buffer.records[0].header.lsn
            for key, buffer in self._buffers.items()
            if key.node == own and buffer.records
        ]
        released = self._wal.release_before(min(waiting, default=self._wal.next_lsn))
        busy = {key.node for key, buffer in self._buffers.items() if buffer.records}
        for node in list(self._orphans):
            if node not in busy:
                self._orphans.pop(node).remove()
                logger.info("adopted write-ahead log %s is fully in the lake; removed", node)
        return released

    # -- recovery ----------------------------------------------------------------------

    async def _recover(self, node: str, records: Iterable[Record]) -> int:
        """Buffer again the records of `node` that no manifest row covers."""
        async with self.database.session() as session:
            rows = await session.execute(
                select(
                    LakeFile.org_id,
                    LakeFile.environment,
                    LakeFile.stream_id,
                    LakeFile.kind,
                    func.max(LakeFile.wal_last_lsn),
                )
                .where(LakeFile.wal_node == node)
                .group_by(LakeFile.org_id, LakeFile.environment, LakeFile.stream_id, LakeFile.kind)
            )
            flushed = {(r[0], r[1], r[2], r[3]): r[4] for r in rows}
            set_aside = set(
                await session.scalars(
                    select(QuarantinedRecord.wal_lsn).where(QuarantinedRecord.wal_node == node)
                )
            )
        kept = []
        for record in records:
            h = record.header
            if h.tag is not None:  # flushed or not: the request that logged it may ask
                place = (node, h.org_id, h.environment, h.tag)
                self._recovered_tags.setdefault(place, []).append(h)
            if (
                h.lsn > flushed.get((h.org_id, h.environment, h.stream_id, h.kind), -1)
                and h.lsn not in set_aside
            ):
                kept.append(record)
        self._buffer_records(kept)
        return len(kept)


__all__ = [
    "KINDS",
    "BatchProcessor",
    "BufferFull",
    "BufferKey",
    "EventBatch",
    "FlushFailed",
    "FlushedFile",
    "LakeEngine",
    "LogUnavailable",
    "Processors",
    "Quarantined",
]
