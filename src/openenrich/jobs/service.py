"""Job rows and their event logs. Callers own the transaction: nothing here commits."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import table
from openenrich.ids import utcnow
from openenrich.jobs.models import TERMINAL, Job, JobEvent
from openenrich.jobs.notify import NEW_WORK, JobHub, announce
from openenrich.tenancy.tenant import Tenant

# The statements every job step runs, built once: constructing an SQLAlchemy statement (and
# the ORM's bookkeeping for it) cost several times what the database took to run it.
_jobs = table(Job)
_events = table(JobEvent)

_INSERT_JOB = _jobs.insert()
_NEXT_SEQ = (
    _jobs.update()
    .where(_jobs.c.id == bindparam("job_id"))
    .values(last_event_seq=_jobs.c.last_event_seq + bindparam("count"), updated_at=bindparam("now"))
    .returning(_jobs.c.last_event_seq, _jobs.c.org_id, _jobs.c.environment)
)
_INSERT_EVENT = _events.insert()


async def create(
    session: AsyncSession,
    hub: JobHub,
    *,
    job_id: str,
    tenant: Tenant,
    kind: str,
    input: dict[str, Any],
    status: str = "queued",
) -> None:
    now = utcnow()
    await session.execute(
        _INSERT_JOB,
        {
            "id": job_id,
            "org_id": tenant.org_id,
            "environment": tenant.environment.value,
            "kind": kind,
            "status": status,
            "input": input,
            "state": {},
            "progress_done": 0,
            "progress_total": 0,
            "attempts": 0,
            "cancel_requested": False,
            "events_purged": False,
            "last_event_seq": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    await announce(session, hub, job_id, NEW_WORK)


async def append_events(
    session: AsyncSession, hub: JobHub, job_id: str, events: Sequence[tuple[str, dict[str, Any]]]
) -> int:
    """Add events to a job's log, in order, and return the last one's sequence number.

    The numbers come from an atomic increment on the job row, so writers in several
    processes (a worker, an API call) never take the same one, and the log has no gaps.
    """
    now = utcnow()
    row = (
        await session.execute(_NEXT_SEQ, {"job_id": job_id, "count": len(events), "now": now})
    ).one()
    first = row.last_event_seq - len(events) + 1
    await session.execute(
        _INSERT_EVENT,
        [
            {
                "job_id": job_id,
                "seq": first + n,
                "org_id": row.org_id,
                "environment": row.environment,
                "type": type,
                "data": data,
                "created_at": now,
            }
            for n, (type, data) in enumerate(events)
        ],
    )
    await announce(session, hub, job_id)
    return int(row.last_event_seq)


async def append_event(
    session: AsyncSession, hub: JobHub, job_id: str, type: str, data: dict[str, Any]
) -> int:
    """Add one event; returns its sequence number (1, 2, …)."""
    return await append_events(session, hub, job_id, [(type, data)])


@functools.cache
def _transition(changes: tuple[str, ...], with_owner: bool) -> Update:
    conditions = [
        _jobs.c.id == bindparam("job_id"),
        _jobs.c.status.in_(bindparam("from_statuses", expanding=True)),
    ]
    if with_owner:
        conditions.append(_jobs.c.lease_owner == bindparam("owner"))
    return (
        _jobs.update()
        .where(*conditions)
        .values({name: bindparam(f"set_{name}") for name in changes})
    )


async def transition(
    session: AsyncSession,
    hub: JobHub,
    job_id: str,
    *,
    from_statuses: Iterable[str],
    to: str,
    owner: str | None = None,
    **values: Any,
) -> bool:
    """Move a job to `to` if it is in one of `from_statuses` (and, with `owner`, still leased
    by it). Exactly one of several concurrent callers wins: the update is conditional."""
    now = utcnow()
    changes: dict[str, Any] = {"status": to, "updated_at": now, **values}
    if to in TERMINAL:
        changes.setdefault("finished_at", now)
        changes.setdefault("lease_owner", None)
        changes.setdefault("lease_expires_at", None)
    statement = _transition(tuple(sorted(changes)), owner is not None)
    params = {f"set_{name}": value for name, value in changes.items()}
    params.update(job_id=job_id, from_statuses=list(from_statuses), owner=owner)
    result = await session.execute(statement, params)
    won = bool(getattr(result, "rowcount", 0) == 1)
    if won:
        await announce(session, hub, job_id, *([NEW_WORK] if to == "queued" else []))
    return won


async def resume(session: AsyncSession, hub: JobHub, job_id: str, **state: Any) -> bool:
    """Give a parked job back to the workers, its state updated with `state`."""
    job = await session.get(Job, job_id)
    if job is None or job.status != "parked":
        return False
    won = await transition(
        session,
        hub,
        job_id,
        from_statuses=["parked"],
        to="queued",
        state={**job.state, **state},
        parked_until=None,
    )
    return won


def _claim_statement(skip_locked: bool) -> Update:
    candidates = (
        select(_jobs.c.id)
        .where(
            _jobs.c.status == "queued",
            _jobs.c.kind.in_(bindparam("kinds", expanding=True)),
            _jobs.c.run_after.is_(None) | (_jobs.c.run_after <= bindparam("now")),
        )
        .order_by(_jobs.c.created_at)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        _jobs.update()
        .where(_jobs.c.id.in_(candidates.scalar_subquery()), _jobs.c.status == "queued")
        .values(
            status="running",
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("lease_expires_at"),
            attempts=_jobs.c.attempts + 1,
            started_at=func.coalesce(_jobs.c.started_at, bindparam("now")),
            updated_at=bindparam("now"),
        )
        .returning(*_jobs.c)
    )


_CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}


async def claim(
    session: AsyncSession,
    *,
    owner: str,
    kinds: Sequence[str],
    limit: int,
    lease_seconds: float,
) -> list[Job]:
    """Take up to `limit` queued jobs for `owner` (detached `Job`s, to read). On
    PostgreSQL, FOR UPDATE SKIP LOCKED lets any number of workers claim at once without
    taking the same job; SQLite's single writer serialises claims anyway."""
    now = utcnow()
    assert session.bind is not None
    statement = _CLAIM[session.bind.dialect.name == "postgresql"]
    result = await session.execute(
        statement,
        {
            "kinds": list(kinds),
            "now": now,
            "limit": limit,
            "owner": owner,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
        },
    )
    return [Job(**row._mapping) for row in result]


async def renew(
    session: AsyncSession, *, owner: str, job_ids: Sequence[str], lease_seconds: float
) -> set[str]:
    """Extend the leases `owner` still holds; returns the ids it still holds."""
    if not job_ids:
        return set()
    now = utcnow()
    held = await session.scalars(
        update(Job)
        .where(Job.id.in_(tuple(job_ids)), Job.lease_owner == owner, Job.status == "running")
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return set(held)


async def lost(session: AsyncSession, *, now: datetime, owner: str | None = None) -> list[Job]:
    """Running jobs whose worker is gone: the lease ran out, or (`owner`) they were this
    node's before it restarted."""
    condition = Job.lease_expires_at < now
    if owner is not None:
        condition = condition | (Job.lease_owner == owner)
    return list(await session.scalars(select(Job).where(Job.status == "running", condition)))


async def parked_past(session: AsyncSession, *, now: datetime) -> list[Job]:
    return list(
        await session.scalars(
            select(Job).where(
                Job.status == "parked", Job.parked_until.is_not(None), Job.parked_until < now
            )
        )
    )
