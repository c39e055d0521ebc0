"""Marks: what makes an offset walk over a pipeline's leads see the pipeline as it was at
its first page, while other clients keep uploading.

A listing with offset 0 (or none) records a mark for (key, pipeline, page size): the
anchor, which is the pipeline's newest row then (its (created_at, id)), and the
pipeline's total then. That page and, while the mark lasts, every offset page of the same
key, pipeline and size list only rows at or below the anchor, with that total. Rows
uploaded since sort above the anchor (an upload stamps its rows after the mark is taken,
see below), so they shift nothing, and the pages are those of the pipeline at offset 0.
A mark lasts `leads_offset_snapshot_seconds` after its last use; a page refreshes it
once a tenth of that has passed (so the pages of a quick walk write nothing), and
housekeeping deletes stale ones.

The anchor must not pass over an upload in flight: one whose rows were stamped before
the anchor's row and that commits after the mark would land below the anchor, uncounted
in its total, and shift every later page. An upload holds its tenant's `lead_accounts`
row locked from its quota check until it commits, and stamps its rows after taking that
lock (`uploads.py`); so one upload commits before the next stamps, and with clocks in
step an upload in flight stamps above every committed row. The mark does not lean on the
clocks alone: it waits for the uploads in flight to commit and counts them, so its anchor
and total describe the pipeline with no upload half done:

- PostgreSQL: the mark first takes that row FOR SHARE, which waits until the uploads
  holding it have committed; the statement that reads the anchor and writes the mark
  comes next, and, under READ COMMITTED, reads what they wrote. An upload that starts
  meanwhile waits for the mark's transaction (a few milliseconds) and stamps its rows
  after. A tenant without that row has never had an upload commit: its pipelines are
  empty and the anchor is None, which nothing can land below.
- SQLite: the upload holds the database's write lock instead, and the mark is one
  INSERT … SELECT, a write, so it too waits for the lock and reads under it. (A read
  before the write in one transaction would see the database as it was at the read, and
  its write would fail with SQLITE_BUSY_SNAPSHOT after another commit.)

Marking is an internal write, done in its own short transaction for any key that may
list (a read-only key too); the page itself is read after it commits, so neither lock is
held while 10,000 rows are read.

Limits: two walks by one key over one pipeline with one page size at once share a mark
(the later offset 0 moves it); the age of a mark and the order of rows rely on the server
hosts' clocks being in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.db.base import UTCDateTime
from openenrich.ids import utcnow
from openenrich.leads.models import LeadAccount, LeadListMark, Pipeline, PipelineLead
from openenrich.tenancy.tenant import Principal

_marks = table(LeadListMark)
_KEY = ("api_key_id", "pipeline_id", "page_size")


@dataclass(frozen=True, slots=True)
class Mark:
    # (created_at as stored, id) of the newest row at the mark; None: the pipeline was empty.
    anchor: tuple[Any, str] | None
    total: int
    used_at: datetime | None = None


def _mark(anchor_at: Any, anchor_id: str | None, total: int, used_at: Any = None) -> Mark:
    anchor = None if anchor_id is None else (anchor_at, anchor_id)
    return Mark(anchor, int(total), used_at)


def _insert_for(database: Database) -> Any:
    return postgresql.insert if database.dialect == "postgresql" else sqlite.insert


def _newest(column: Any) -> Any:
    """The pipeline's newest row's `column`: one probe of (pipeline_id, created_at, id)."""
    links, pipelines = table(PipelineLead), table(Pipeline)
    return (
        select(column)
        .where(links.c.pipeline_id == pipelines.c.id)
        .order_by(links.c.created_at.desc(), links.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


async def take(
    database: Database, principal: Principal, pipeline_id: str, size: int
) -> Mark | None:
    """Record the mark of a walk starting now; None when the tenant has no such pipeline."""
    tenant = principal.tenant
    links, pipelines = table(PipelineLead), table(Pipeline)
    now = utcnow()
    source = select(
        literal(principal.key_id, String()),
        pipelines.c.id,
        literal(size, Integer()),
        pipelines.c.org_id,
        pipelines.c.environment,
        # Copied as stored, so the pages compare against exactly the row's value.
        _newest(links.c.created_at),
        _newest(links.c.id),
        pipelines.c.total_leads,
        literal(now, UTCDateTime()),
    ).where(
        pipelines.c.id == pipeline_id,
        pipelines.c.org_id == tenant.org_id,
        pipelines.c.environment == tenant.environment.value,
    )
    insert = _insert_for(database)(_marks).from_select(
        [*_KEY, "org_id", "environment", "anchor_at", "anchor_id", "total", "used_at"], source
    )
    statement = insert.on_conflict_do_update(
        index_elements=[_marks.c[name] for name in _KEY],
        set_={
            name: insert.excluded[name] for name in ("anchor_at", "anchor_id", "total", "used_at")
        },
    ).returning(type_coerce(_marks.c.anchor_at, String), _marks.c.anchor_id, _marks.c.total)
    async with database.session() as session:
        if database.dialect == "postgresql":
            accounts = table(LeadAccount)
            await session.execute(
                select(accounts.c.lead_count)
                .where(
                    accounts.c.org_id == tenant.org_id,
                    accounts.c.environment == tenant.environment.value,
                )
                .with_for_update(read=True)
            )
        row = (await session.execute(statement)).first()
        await session.commit()
    return None if row is None else _mark(row[0], row[1], row[2])


def find(
    connection: Connection, principal: Principal, pipeline_id: str, size: int, seconds: float
) -> Mark | None:
    """The key's mark for this pipeline and page size, unless it is older than `seconds`."""
    found = connection.execute(
        select(
            type_coerce(_marks.c.anchor_at, String),
            _marks.c.anchor_id,
            _marks.c.total,
            _marks.c.used_at,
        ).where(
            _marks.c.api_key_id == principal.key_id,
            _marks.c.pipeline_id == pipeline_id,
            _marks.c.page_size == size,
            _marks.c.used_at >= utcnow() - timedelta(seconds=seconds),
        )
    ).first()
    return None if found is None else _mark(*found)


async def keep(
    database: Database,
    principal: Principal,
    pipeline_id: str,
    size: int,
    mark: Mark,
    seconds: float,
) -> None:
    """Refresh a mark in use, once a tenth of its life has passed since it last was."""
    now = utcnow()
    if mark.used_at is None or now - mark.used_at < timedelta(seconds=seconds / 10):
        return
    async with database.session() as session:
        await session.execute(
            update(_marks)
            .where(
                _marks.c.api_key_id == principal.key_id,
                _marks.c.pipeline_id == pipeline_id,
                _marks.c.page_size == size,
            )
            .values(used_at=now)
        )
        await session.commit()


async def purge(database: Database, settings: Settings) -> None:
    """Housekeeping: marks unused for `leads_offset_snapshot_seconds` are gone for good."""
    cutoff = utcnow() - timedelta(seconds=settings.leads_offset_snapshot_seconds)
    async with database.session() as session:
        await session.execute(_marks.delete().where(_marks.c.used_at < cutoff))
        await session.commit()
