"""The reads that waiting clients repeat (long-polls, event streams), built once and run
through `Database.read`: no transaction, inline on SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from openenrich.db import table
from openenrich.jobs.models import Job, JobEvent

_jobs = table(Job)
_events = table(JobEvent)

STATUS = select(_jobs.c.status).where(_jobs.c.id == bindparam("job_id"))

EVENTS_AFTER = (
    select(_events.c.seq, _events.c.type, _events.c.data)
    .where(_events.c.job_id == bindparam("job_id"), _events.c.seq > bindparam("after"))
    .order_by(_events.c.seq)
    .limit(500)
)


def status(connection: Connection, job_id: str) -> str | None:
    return connection.execute(STATUS, {"job_id": job_id}).scalar_one_or_none()


def status_and_events(
    connection: Connection, job_id: str, after: int
) -> tuple[str | None, list[Row[Any, Any, Any]]]:
    """The status, then the events `(seq, type, data)` after `after`. The status comes
    first: once it is terminal, every event is already committed."""
    found = status(connection, job_id)
    events = list(connection.execute(EVENTS_AFTER, {"job_id": job_id, "after": after}))
    return found, events
