"""Idempotent creation: one job per Idempotency-Key, however often the request is sent.

The key is a row (`idempotency_keys`, unique per tenant) written in the transaction that
creates the job, with a digest of the request. Of two requests with one key, one inserts
it; the other meets the unique constraint, rolls back and answers with the winner's job.
The same key with another request (or for another kind of job) gets the surface's error.
A job whose worker died (`interrupted`) is queued again under its id when its key comes
back: that retry is what the key is for.

Creation is therefore a unit of work of its own: `create_once` commits, not the request,
because only a rollback gets past the constraint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.errors import InvalidRequest
from openenrich.ids import utcnow
from openenrich.jobs import service
from openenrich.jobs.models import IdempotencyKey, Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.view import JobView
from openenrich.tenancy.tenant import Tenant

R = TypeVar("R")

_keys = table(IdempotencyKey)
_jobs = table(Job)

_FIND = (
    select(_keys.c.request_hash, _keys.c.run_id.label("job_id"), _jobs.c.kind)
    .join(_jobs, _jobs.c.id == _keys.c.run_id)
    .where(
        _keys.c.org_id == bindparam("org_id"),
        _keys.c.environment == bindparam("environment"),
        _keys.c.key == bindparam("key"),
    )
)
_INSERT = _keys.insert()
_PURGE = _keys.delete().where(_keys.c.created_at < bindparam("cutoff"))


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: str
    digest: str  # of the request: the same key with another request is told apart


def idempotency(key: str | None, request: dict[str, Any]) -> Idempotency | None:
    """From the Idempotency-Key header and what identifies the request (its body, less
    what only shapes the answer); None without a key."""
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise InvalidRequest("Idempotency-Key: must be 1 to 255 characters")
    digest = hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Idempotency(key, digest)


Create = Callable[[AsyncSession], Awaitable[str]]
# The answer to the creating request, read in the transaction that decided it: a worker
# may take a new job the moment it is committed, and the answer shows it as created.
Describe = Callable[[AsyncSession, str], Awaitable[R]]


@dataclass(frozen=True, slots=True)
class Created(Generic[R]):
    job_id: str
    new: bool  # False: an earlier request with the same key made it
    resource: R  # what `describe` read before the commit


async def create_once(
    database: Database,
    hub: JobHub,
    view: JobView[Any],
    tenant: Tenant,
    idempotency: Idempotency | None,
    create: Create,
    describe: Describe[R],
) -> Created[R]:
    """Commit the job `create(session)` makes (it returns the job's id) with its key, or,
    when the key was sent before, nothing: the earlier job."""
    async with database.session() as session:
        if idempotency is not None:
            found = await _replay(session, hub, view, tenant, idempotency)
            if found is not None:
                return await _decided(session, found, False, describe)
        job_id = await create(session)
        if idempotency is None:
            return await _decided(session, job_id, True, describe)
        try:
            await _remember(session, tenant, idempotency, job_id)
            return await _decided(session, job_id, True, describe)
        except IntegrityError:
            await session.rollback()  # a request with the same key committed first
            found = await _replay(session, hub, view, tenant, idempotency)
            if found is None:
                raise
            return await _decided(session, found, False, describe)


async def _decided(
    session: AsyncSession, job_id: str, new: bool, describe: Describe[R]
) -> Created[R]:
    resource = await describe(session, job_id)
    await session.commit()
    return Created(job_id, new, resource)


async def _replay(
    session: AsyncSession, hub: JobHub, view: JobView[Any], tenant: Tenant, idem: Idempotency
) -> str | None:
    """The id of the job an earlier request with this key made; None if the key is new."""
    params = {"org_id": tenant.org_id, "environment": tenant.environment.value, "key": idem.key}
    earlier = (await session.execute(_FIND, params)).one_or_none()
    if earlier is None:
        return None
    if earlier.request_hash != idem.digest or earlier.kind != view.kind:
        raise view.reused(earlier.job_id)
    await service.transition(
        session,
        hub,
        earlier.job_id,
        from_statuses=["interrupted"],
        to="queued",
        finished_at=None,
        error=None,
        events_purged=False,  # its log grows again, and is kept again once it ends
    )
    return str(earlier.job_id)


async def _remember(session: AsyncSession, tenant: Tenant, idem: Idempotency, job_id: str) -> None:
    await session.execute(
        _INSERT,
        {
            "org_id": tenant.org_id,
            "environment": tenant.environment.value,
            "key": idem.key,
            "request_hash": idem.digest,
            "run_id": job_id,
            "created_at": utcnow(),
        },
    )


async def purge(database: Database, settings: Settings) -> None:
    """Housekeeping: a key is kept `idempotency_ttl_hours` (at least 24)."""
    cutoff = utcnow() - timedelta(hours=settings.idempotency_ttl_hours)
    async with database.session() as session:
        await session.execute(_PURGE, {"cutoff": cutoff})
        await session.commit()
