"""The destinations' outbox: what the lake engine's flush calls to hand routed rows over.

In the flush thread, `stage()` writes each destination's rows as a Parquet file, durably,
in the lake's storage (a local folder or S3) under `_outbox/`, outside every tenant's
prefix (so no user query sees it) and readable by every `serve` and `worker` process that
shares the lake. Then, in the flush's own database transaction, `enqueue()` adds one
`destination_batches` row per file, and the delivery loop (destinations/delivery.py) is
woken once that transaction commits. A crash before the commit leaves the events in the
write-ahead log: recovery stages the same file name again (overwriting it) and enqueues it
(a row that exists is left alone), so nothing is sent twice because of the crash.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import table
from openenrich.ids import new_id, utcnow
from openenrich.jobs.notify import JobHub, announce
from openenrich.lake.storage import LakeStorage
from openenrich.streams.destinations.models import Destination, DestinationBatch
from openenrich.streams.models import STREAM_ID

logger = logging.getLogger("openenrich.destinations")

OUTBOX = "destinations"  # the hub key the delivery loop waits on
LAKE = "lake"  # the built-in destination: the stream's own lake files
OUTBOX_FOLDER = "_outbox"
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


@dataclass(frozen=True)
class StagedBatch:
    org_id: str
    environment: str
    destination_id: str
    stream_id: str
    name: str
    path: str  # relative to the lake's root
    rows: int
    bytes: int


def outbox_path(
    org_id: str, environment: str, destination_id: str, stream_id: str, name: str
) -> str:
    for part, value in (("destination_id", destination_id), ("stream_id", stream_id)):
        if not STREAM_ID.fullmatch(value):
            raise ValueError(f"{part} {value!r} cannot name a file")
    if not _NAME.fullmatch(name):
        raise ValueError(f"batch name {name!r}: letters, digits, '.', _ and - only")
    return f"{OUTBOX_FOLDER}/{org_id}/{environment}/{destination_id}/{stream_id}/{name}.parquet"


def stage(
    storage: LakeStorage,
    org_id: str,
    environment: str,
    destination_id: str,
    stream_id: str,
    name: str,
    rows: pa.Table,
) -> StagedBatch:
    """Write `rows` for one destination, fsync'd and renamed into place (or uploaded, on
    S3) before returning. Blocking: call it from the flush thread. The same `name` gives
    the same file, so staging again after a crash overwrites instead of duplicating."""
    relative = outbox_path(org_id, environment, destination_id, stream_id, name)
    staged = storage.staging_path(relative)
    try:
        pq.write_table(rows, staged, compression="zstd")
        size = storage.publish(staged, relative)
    except BaseException:
        storage.discard(staged)
        raise
    return StagedBatch(
        org_id, environment, destination_id, stream_id, name, relative, rows.num_rows, size
    )


_destinations = table(Destination)
_batches = table(DestinationBatch)


async def enqueue(session: AsyncSession, hub: JobHub, batches: list[StagedBatch]) -> None:
    """One outbox row per staged batch, in the caller's transaction (a batch that is
    already there is left alone); the delivery loop wakes once it commits. A batch for a
    destination that no longer exists is dropped with a warning (its file is removed by
    the next delivery loop's sweep of deleted destinations)."""
    if not batches:
        return
    wanted = {(b.org_id, b.environment, b.destination_id) for b in batches}
    found = await session.execute(
        select(
            _destinations.c.id,
            _destinations.c.org_id,
            _destinations.c.environment,
            _destinations.c.destination_id,
        ).where(_destinations.c.destination_id.in_({w[2] for w in wanted}))
    )
    keys = {(row.org_id, row.environment, row.destination_id): row.id for row in found}
    now = utcnow()
    rows = []
    for batch in batches:
        destination_pk = keys.get((batch.org_id, batch.environment, batch.destination_id))
        if destination_pk is None:
            logger.warning(
                "dropping a batch for %s: no such destination any more", batch.destination_id
            )
            continue
        rows.append(
            {
                "batch_id": new_id("dbt"),
                "destination_pk": destination_pk,
                "org_id": batch.org_id,
                "environment": batch.environment,
                "stream_id": batch.stream_id,
                "name": batch.name,
                "path": batch.path,
                "rows": batch.rows,
                "bytes": batch.bytes,
                "status": "pending",
                "chunks_sent": 0,
                "attempts": 0,
                "created_at": now,
            }
        )
    if not rows:
        return
    assert session.bind is not None
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    await session.execute(dialect.insert(_batches).on_conflict_do_nothing(), rows)
    # A destination waiting for company for a small batch (max_seconds) looks again now:
    # this one may fill it up.
    await session.execute(
        update(_destinations)
        .where(
            _destinations.c.id.in_({row["destination_pk"] for row in rows}),
            _destinations.c.filling.is_(True),
        )
        .values(next_attempt_at=now, filling=False)
    )
    await announce(session, hub, OUTBOX)


async def active_destinations(
    session: AsyncSession, org_id: str, environment: str
) -> dict[str, str]:
    """The tenant's destination ids and their types, `lake` included: what a route's `to`
    may name."""
    found = await session.execute(
        select(_destinations.c.destination_id, _destinations.c.type).where(
            _destinations.c.org_id == org_id, _destinations.c.environment == environment
        )
    )
    return {LAKE: LAKE, **{row.destination_id: row.type for row in found}}
