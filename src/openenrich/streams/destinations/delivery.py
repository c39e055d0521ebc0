"""The delivery loop: sends each destination its outbox, in order, at least once.

It runs beside the workers in every `serve` and `worker` process (a Component service).
A process takes a destination with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`), so one
process at a time delivers it, oldest batch first; several destinations are delivered at
once (`destination_concurrency`), so one that is down or slow never holds up the others,
and the lake never waits for any of them (the flush only stages files and adds rows).

Small consecutive batches of one stream are sent together up to the destination's
`max_events`/`max_bytes` (waiting up to `max_seconds` for more); a batch larger than that
goes out in several chunks. The batches sent together are fixed the first time they are
tried (their `group_id`), so every retry sends the same events under the same chunk ids.
A chunk that the receiver took is recorded (`chunks_sent`) before the next one is sent.

A failure pushes the destination's next attempt back (exponential backoff with jitter,
capped, or the receiver's Retry-After); after `destination_max_attempts` tries or
`destination_max_age_seconds` since the first, the batches are dead-lettered (kept, listed
by `GET /destinations/{id}/batches?status=dead`, sent again by `POST …/retry`) and the
queue moves on. A crash between a send and its record sends that chunk again: receivers
dedupe by the http `webhook-id`, Elasticsearch `_id`, or the S3 object name.

Every transaction that changes a destination and its batches changes the destination row
first (the API's delete and retry lock it first too): one order, so none deadlocks another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import delete, exists, func, select, update

from openenrich import __version__
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.errors import OpenEnrichError
from openenrich.http.metrics import HttpMetrics
from openenrich.ids import utcnow
from openenrich.jobs.notify import JobHub
from openenrich.jobs.runtime import JobsRuntime
from openenrich.lake.storage import LakeStorage
from openenrich.looping import BackgroundLoop
from openenrich.secretbox import SecretBox, load_secret_box
from openenrich.streams.destinations import senders  # noqa: F401 (registers the built-ins)
from openenrich.streams.destinations.models import Destination, DestinationBatch
from openenrich.streams.destinations.registry import (
    SENDERS,
    Chunk,
    DeliveryFailed,
    SendContext,
)
from openenrich.streams.destinations.service import full_config
from openenrich.streams.outbox import OUTBOX
from openenrich.web.client import guarded_client

logger = logging.getLogger("openenrich.destinations")
_BATCHES_PER_GROUP = 1000  # looked at when gathering small batches into one request


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "openenrich_destination_events",
            "Events sent to destinations, by destination type and outcome (delivered, failed).",
            ["type", "outcome"],
            registry=registry,
        )
        self.requests = Counter(
            "openenrich_destination_requests",
            "Chunks sent to destinations, by destination type and outcome.",
            ["type", "outcome"],
            registry=registry,
        )
        self.dead = Counter(
            "openenrich_destination_dead_batches",
            "Batches dead-lettered after their last try, by destination type.",
            ["type"],
            registry=registry,
        )
        self.latency = Histogram(
            "openenrich_destination_send_duration_seconds",
            "Time to send one chunk to a destination, by type.",
            ["type"],
            registry=registry,
        )


@dataclass(slots=True)
class _Group:
    batches: list[DestinationBatch]
    group_id: str
    chunks_sent: int


def backoff_seconds(settings: Settings, attempts: int, hint: float | None) -> float:
    """The wait after the `attempts`-th failure: exponential, capped, with ±20% jitter (so
    many destinations failing together do not retry together); the receiver's own
    Retry-After wins, up to the cap."""
    cap = settings.destination_retry_max_seconds
    if hint is not None:
        return min(max(hint, 0.0), cap)
    delay = min(cap, settings.destination_retry_base_seconds * 2 ** min(attempts - 1, 30))
    return float(delay * random.uniform(0.8, 1.2))


def chunk_rows(table: pa.Table, max_events: int, max_bytes: int) -> int:
    """Rows per request: at most `max_events`, and about `max_bytes` by the table's own
    size per row (the same answer for the same rows, so chunk ids stay the same)."""
    rows: int = table.num_rows
    if rows == 0:
        return max_events
    per_row = max(1, int(table.nbytes) // rows)
    return max(1, min(max_events, max_bytes // per_row))


class DeliveryLoop:
    def __init__(
        self,
        database: Database,
        hub: JobHub,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        box: SecretBox | None = None,
    ) -> None:
        self.database = database
        self.hub = hub
        self.settings = settings
        self.storage = LakeStorage(settings)
        self.box = box or load_secret_box(settings)
        self.metrics = DeliveryMetrics(registry or CollectorRegistry())
        self.context = SendContext(
            http=guarded_client(
                allow_private=settings.allow_private_urls,
                allowed_hosts=settings.allowed_private_hosts,
                timeout=settings.destination_timeout_seconds,
                max_connections=settings.destination_concurrency * 2,
                headers={"user-agent": f"OpenEnrich-Destinations/{__version__}"},
            ),
            allow_private=settings.allow_private_urls,
            allowed_hosts=frozenset(settings.allowed_private_hosts),
            timeout=settings.destination_timeout_seconds,
        )
        self._loop = BackgroundLoop(self._run, name="destination-delivery")
        self._running: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def for_runtime(cls, runtime: JobsRuntime) -> DeliveryLoop:
        try:  # in `serve`, the delivery counters show on /metrics beside the HTTP ones
            registry: CollectorRegistry | None = runtime.parts.get(HttpMetrics).registry
        except LookupError:
            registry = None
        return cls(runtime.database, runtime.hub, runtime.settings, registry=registry)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        self._running.clear()
        await self.context.http.aclose()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            waiter = self.hub.watch(OUTBOX)
            try:
                free = self.settings.destination_concurrency - len(self._running)
                if free > 0:
                    for destination_pk in await self._claim(free):
                        self._running[destination_pk] = asyncio.create_task(
                            self._work(destination_pk), name=f"deliver-{destination_pk}"
                        )
                if len(self._running) >= self.settings.destination_concurrency:
                    idle = self.settings.job_poll_seconds * 5  # a task's end wakes it
                else:
                    idle = await self._idle_seconds()
                await asyncio.wait(
                    [waiter, *self._running.values()],
                    timeout=idle,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for destination_pk, task in list(self._running.items()):
                    if task.done():
                        del self._running[destination_pk]
                        if not task.cancelled() and task.exception() is not None:
                            logger.error(
                                "delivering to %s failed",
                                destination_pk,
                                exc_info=task.exception(),
                            )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("destination delivery failed; retrying shortly")
                await asyncio.sleep(1)
            finally:
                self.hub.unwatch(OUTBOX, waiter)

    async def _idle_seconds(self) -> float:
        longest = self.settings.job_poll_seconds * 5
        now = utcnow()
        async with self.database.session() as session:
            # Only what this process could claim: one it is delivering, or another process
            # holds, would have it spin. Their ends wake it (a task's end here; the poll,
            # for another process's lease running out).
            soonest = await session.scalar(
                select(func.min(Destination.next_attempt_at)).where(
                    Destination.lease_expires_at.is_(None) | (Destination.lease_expires_at < now),
                    Destination.id.not_in(list(self._running)),
                    _has_pending(),
                )
            )
        if soonest is None:
            return longest
        return min(max((soonest - now).total_seconds(), 0.01), longest)

    async def _claim(self, limit: int) -> list[str]:
        now = utcnow()
        async with self.database.session() as session:
            query = (
                select(Destination)
                .where(
                    Destination.next_attempt_at <= now,
                    Destination.lease_expires_at.is_(None) | (Destination.lease_expires_at < now),
                    Destination.id.not_in(list(self._running)),
                    _has_pending(),
                )
                .order_by(Destination.next_attempt_at)
                .limit(limit)
            )
            if self.database.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True, of=Destination)
            claimed = list(await session.scalars(query))
            for destination in claimed:
                destination.lease_expires_at = self._lease()
            await session.commit()
        return [destination.id for destination in claimed]

    def _lease(self) -> datetime:
        return utcnow() + timedelta(seconds=self.settings.destination_lease_seconds)

    # -- one destination -------------------------------------------------------------------

    async def _work(self, destination_pk: str) -> None:
        """Deliver the destination's due batches in order until none is left, it fails, or
        a batch waits for company (`max_seconds`); then give the lease back."""
        try:
            while await self._deliver_next(destination_pk):
                pass
        finally:
            async with self.database.session() as session:
                await session.execute(
                    update(Destination)
                    .where(Destination.id == destination_pk)
                    .values(lease_expires_at=None)
                )
                await session.commit()

    async def _deliver_next(self, destination_pk: str) -> bool:
        """Send the next group; True to go on with the one after it."""
        async with self.database.session() as session:
            destination = await session.get(Destination, destination_pk)
            if destination is None:
                return False
            destination.lease_expires_at = self._lease()
            group = await self._next_group(session, destination)
            await session.commit()
        if group is None:
            return False
        try:
            await self._send(destination, group)
        except DeliveryFailed as failed:
            await self._failed(destination, group, str(failed), failed.retry_after)
            return False
        except Exception as error:  # a bug or a surprise: back off like any failure
            logger.exception("delivering to %s failed", destination.destination_id)
            await self._failed(destination, group, f"{type(error).__name__}: {error}", None)
            return False
        await self._delivered(destination, group)
        return True

    async def _next_group(self, session: Any, destination: Destination) -> _Group | None:
        pending = select(DestinationBatch).where(
            DestinationBatch.destination_pk == destination.id,
            DestinationBatch.status == "pending",
        )
        head: DestinationBatch | None = await session.scalar(
            pending.order_by(DestinationBatch.seq).limit(1)
        )
        if head is None:
            return None
        if head.group_id is not None:
            batches = list(
                await session.scalars(
                    pending.where(DestinationBatch.group_id == head.group_id).order_by(
                        DestinationBatch.seq
                    )
                )
            )
            return _Group(batches, head.group_id, head.chunks_sent)
        batches, rows, size, complete = [], 0, 0, False
        candidates = await session.scalars(
            pending.where(DestinationBatch.group_id.is_(None))
            .order_by(DestinationBatch.seq)
            .limit(_BATCHES_PER_GROUP)
        )
        for batch in candidates:
            if batches and (
                batch.stream_id != head.stream_id
                or rows + batch.rows > destination.max_events
                or size + batch.bytes > destination.max_bytes
            ):
                complete = True  # the next one would not fit: nothing to wait for
                break
            batches.append(batch)
            rows += batch.rows
            size += batch.bytes
        ready_at = head.created_at + timedelta(seconds=destination.max_seconds)
        if not complete and rows < destination.max_events and ready_at > utcnow():
            # Too small to send yet: wait (up to max_seconds) for more to join it.
            destination.next_attempt_at = ready_at
            destination.filling = True
            return None
        destination.filling = False
        for batch in batches:
            batch.group_id = head.batch_id
        return _Group(batches, head.batch_id, 0)

    async def _send(self, destination: Destination, group: _Group) -> None:
        sender_class = SENDERS.get(destination.type)
        if sender_class is None:
            raise DeliveryFailed(f"no sender for the type {destination.type!r} in this server")
        try:
            config = full_config(self.box, destination)
        except OpenEnrichError as error:
            raise DeliveryFailed(error.message) from None
        try:
            tables = await asyncio.to_thread(self._read, group)
        except (OSError, pa.ArrowException) as error:
            raise DeliveryFailed(f"reading the staged batch failed: {error}") from None
        table = pa.concat_tables(tables, promote_options="permissive")
        step = chunk_rows(table, destination.max_events, destination.max_bytes)
        starts = list(range(0, max(table.num_rows, 1), step))
        sender = sender_class(config, self.context)
        try:
            for index in range(group.chunks_sent, len(starts)):
                chunk_id = group.group_id if len(starts) == 1 else f"{group.group_id}-{index}"
                chunk = Chunk(
                    destination.destination_id,
                    group.batches[0].stream_id,
                    chunk_id,
                    table.slice(starts[index], step),
                )
                started = time.perf_counter()
                try:
                    await sender.send(chunk)
                except DeliveryFailed:
                    self.metrics.requests.labels(destination.type, "failed").inc()
                    self.metrics.events.labels(destination.type, "failed").inc(len(chunk.table))
                    raise
                self.metrics.latency.labels(destination.type).observe(time.perf_counter() - started)
                self.metrics.requests.labels(destination.type, "delivered").inc()
                self.metrics.events.labels(destination.type, "delivered").inc(len(chunk.table))
                if index + 1 < len(starts):
                    await self._record_progress(group, index + 1)
        finally:
            await sender.close()

    def _read(self, group: _Group) -> list[pa.Table]:
        return [
            pq.read_table(self.storage.full_path(batch.path), filesystem=self.storage.fs)
            for batch in group.batches
        ]

    async def _record_progress(self, group: _Group, chunks_sent: int) -> None:
        async with self.database.session() as session:
            # A large group takes many chunks: keep the destination ours meanwhile.
            await session.execute(
                update(Destination)
                .where(Destination.id == group.batches[0].destination_pk)
                .values(lease_expires_at=self._lease())
            )
            await session.execute(
                update(DestinationBatch)
                .where(DestinationBatch.seq.in_([b.seq for b in group.batches]))
                .values(chunks_sent=chunks_sent)
            )
            await session.commit()

    async def _delivered(self, destination: Destination, group: _Group) -> None:
        now = utcnow()
        async with self.database.session() as session:
            await session.execute(
                update(Destination)
                .where(Destination.id == destination.id)
                .values(
                    delivered_batches=Destination.delivered_batches + len(group.batches),
                    delivered_events=Destination.delivered_events
                    + sum(b.rows for b in group.batches),
                    last_delivered_at=now,
                    next_attempt_at=now,
                )
            )
            await session.execute(
                update(DestinationBatch)
                .where(DestinationBatch.seq.in_([b.seq for b in group.batches]))
                .values(status="delivered", delivered_at=now, chunks_sent=0)
            )
            await session.commit()
        await asyncio.to_thread(self._remove_files, [b.path for b in group.batches])

    def _remove_files(self, paths: list[str]) -> None:
        for path in paths:
            # Gone already (a redelivery after a crash) is fine; so is a failure: the
            # file is an orphan then, which costs space but never a duplicate.
            with contextlib.suppress(OSError):
                self.storage.fs.delete_file(self.storage.full_path(path))

    async def _failed(
        self, destination: Destination, group: _Group, error: str, hint: float | None
    ) -> None:
        now = utcnow()
        seqs = [b.seq for b in group.batches]
        attempts = max(b.attempts for b in group.batches) + 1
        first = min((b.first_attempt_at for b in group.batches if b.first_attempt_at), default=now)
        too_old = (now - first).total_seconds() >= self.settings.destination_max_age_seconds
        dead = attempts >= self.settings.destination_max_attempts or too_old
        async with self.database.session() as session:
            wait = 0.0 if dead else backoff_seconds(self.settings, attempts, hint)
            await session.execute(
                update(Destination)
                .where(Destination.id == destination.id)
                .values(
                    last_error=error[:2000],
                    last_error_at=now,
                    next_attempt_at=now + timedelta(seconds=wait),
                    filling=False,
                )
            )
            await session.execute(
                update(DestinationBatch)
                .where(DestinationBatch.seq.in_(seqs))
                .values(
                    attempts=attempts,
                    first_attempt_at=first,
                    last_error=error[:2000],
                    status="dead" if dead else "pending",
                )
            )
            await session.commit()
        if dead:
            self.metrics.dead.labels(destination.type).inc(len(group.batches))
            logger.warning(
                "destination %s: %d batch(es) dead-lettered after %d attempt(s): %s",
                destination.destination_id,
                len(group.batches),
                attempts,
                error,
            )


def _has_pending() -> Any:
    return exists().where(
        DestinationBatch.destination_pk == Destination.id, DestinationBatch.status == "pending"
    )


async def purge_delivered(database: Database, settings: Settings) -> None:
    """Housekeeping: forget delivered batches after `destination_delivered_retention_hours`
    (their counts stay on the destination)."""
    cutoff = utcnow() - timedelta(hours=settings.destination_delivered_retention_hours)
    async with database.session() as session:
        await session.execute(
            delete(DestinationBatch).where(
                DestinationBatch.status == "delivered", DestinationBatch.delivered_at < cutoff
            )
        )
        await session.commit()
