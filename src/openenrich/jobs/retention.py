"""Housekeeping: a finished job's event log is kept `job_events_retention_days`, then
deleted. The job row stays, and with it the job's resource; an event stream opened on it
afterwards replays nothing and closes, as for a finished job with no events.

The purge reads the finished jobs whose events are still kept, oldest first (an index
holds only those, so the work is what is due, not every job there ever was), and deletes
their events at most `BATCH` at a time, each batch a short transaction of its own: a
backlog of millions of events never holds the database (SQLite's one writer) for long. A
job is marked `events_purged` in the transaction that deletes its last events, so a purge
cut short resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select, text, true

from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.ids import utcnow
from openenrich.jobs.models import Job, JobEvent

logger = logging.getLogger("openenrich.jobs")

BATCH = 1000  # events deleted in one transaction, at most
_PAGE = 500  # jobs read at a time

_jobs = table(Job)
_events = table(JobEvent)

_DUE = (
    select(_jobs.c.id, _jobs.c.last_event_seq)
    # The index's own condition, word for word: SQLite uses a partial index only then.
    .where(_jobs.c.finished_at < bindparam("cutoff"), text("NOT events_purged"))
    .order_by(_jobs.c.finished_at)
    .limit(_PAGE)
)
# Only while the job is still finished before the cutoff: a job queued again in between
# (an interrupted run retried by its key) keeps its log.
_STILL_DUE = select(_jobs.c.id).where(
    _jobs.c.id.in_(bindparam("ids", expanding=True)), _jobs.c.finished_at < bindparam("cutoff")
)
_DELETE = _events.delete().where(
    _events.c.job_id.in_(_STILL_DUE.scalar_subquery()),
    _events.c.seq > bindparam("after"),
    _events.c.seq <= bindparam("upto"),
)
_MARK = (
    _jobs.update()
    .where(
        _jobs.c.id.in_(bindparam("ids", expanding=True)),
        _jobs.c.finished_at < bindparam("cutoff"),
    )
    .values(events_purged=true())
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One transaction's work: the events of `ids` numbered in (after, upto], and whether
    those are their last (then the jobs are marked)."""

    ids: list[str]
    after: int
    upto: int
    last: bool


def plan(due: list[tuple[str, int]]) -> list[Chunk]:
    """The transactions that delete the events of `due` (job ids and their last_event_seq):
    jobs together while their events fit in a batch (a job's events are numbered 1 to
    its last_event_seq, without gaps); a job with more, alone, a batch of numbers at a time."""
    chunks: list[Chunk] = []
    group: list[str] = []
    size = 0
    for job_id, count in due:
        if count > BATCH:
            chunks += [
                Chunk([job_id], after, after + BATCH, after + BATCH >= count)
                for after in range(0, count, BATCH)
            ]
            continue
        if group and size + count > BATCH:
            chunks.append(Chunk(group, 0, BATCH, True))
            group, size = [], 0
        group.append(job_id)
        size += count
    if group:
        chunks.append(Chunk(group, 0, BATCH, True))
    return chunks


def _due(connection: Connection, cutoff: datetime) -> list[tuple[str, int]]:
    return [(row.id, row.last_event_seq) for row in connection.execute(_DUE, {"cutoff": cutoff})]


async def purge_events(database: Database, settings: Settings) -> None:
    """Delete the events of jobs that finished `job_events_retention_days` ago or more."""
    cutoff = utcnow() - timedelta(days=settings.job_events_retention_days)
    jobs = deleted = 0
    while True:
        due = await database.read(functools.partial(_due, cutoff=cutoff))
        for chunk in plan(due):
            async with database.session() as session:
                result = await session.execute(
                    _DELETE,
                    {"ids": chunk.ids, "cutoff": cutoff, "after": chunk.after, "upto": chunk.upto},
                )
                deleted += max(0, getattr(result, "rowcount", 0))
                if chunk.last:
                    await session.execute(_MARK, {"ids": chunk.ids, "cutoff": cutoff})
                await session.commit()
            await asyncio.sleep(0)  # whoever waits for the database goes between batches
        jobs += len(due)
        if len(due) < _PAGE:
            break
    if jobs:
        logger.info("purged %d events of %d jobs finished before %s", deleted, jobs, cutoff)
