"""The jobs of the entity surface on the job runtime: their kinds, their resource, how their
events go on the wire, and the moves a client makes (cancel, continue).

- **Kinds.** `entities.enrichment` (single and batch), `entities.schema_generation`,
  `entities.schema_edit`, `entities.fusion`: each a `JobSpec` the component registers (a
  part that runs its own handler passes it to `spec`). An `EntityJob` row (same id as the
  runtime's job) keeps what the job was asked to do and its counters.
- **Statuses**, in this surface's words: queued, running, paused (the runtime's `parked`:
  waiting for `continue`), completed, failed, cancelled (a job whose worker died is queued
  again, so `interrupted` is not seen; it reads as failed).
- **Events.** `id: <seq>` and one `data:` line holding `{"type": <event>, ...}`, as the
  reference's client reads them (it looks at `event["type"]`, never at an `event:` line).
  Whatever ends a job writes `completed` last, with the final status, the counters and the
  total cost; a failure writes `error` just before it.
- **Cancel** moves a queued, running or paused job to cancelled at once; its worker stops
  at its next commit (each of its transactions first updates the job row on the
  condition that it is still running under that worker), so what it finished is kept and
  `completed` stays last. Cancelling a finished job changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import orjson
from fastapi.sse import format_sse_event
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import Database, table
from openenrich.entities.models import EntityJob, EntityJobItem
from openenrich.entities.schemas import JobOut
from openenrich.errors import Conflict, NotFound, OpenEnrichError
from openenrich.ids import utcnow
from openenrich.jobs import service as jobs
from openenrich.jobs.models import TERMINAL, Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.view import JobView
from openenrich.jobs.worker import JobContext, JobSpec, Stopped
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

# The runtime's kind for each of this surface's (`entity_jobs.kind`).
KINDS = {
    "enrichment": "entities.enrichment",
    "schema_generation": "entities.schema_generation",
    "schema_edit": "entities.schema_edit",
    "fusion": "entities.fusion",
}

PUBLIC_STATUS = {
    "queued": "queued",
    "running": "running",
    "parked": "paused",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "interrupted": "failed",  # not seen: these jobs are queued again (on_lost)
}

_jobs = table(Job)
_entity_jobs = table(EntityJob)
_items = table(EntityJobItem)


def public_status(status: str) -> str:
    return PUBLIC_STATUS.get(status, "failed")


def wire_event(seq: int, type: str, data: dict[str, Any]) -> bytes:
    """`id: <seq>` and `data: {"type": <type>, ...}` (no `event:` line)."""
    return format_sse_event(id=str(seq), data_str=orjson.dumps({"type": type, **data}).decode())


def not_found() -> NotFound:
    return NotFound("Job not found")


# -- the resource ------------------------------------------------------------------------------

_RESOURCE = (
    select(
        _entity_jobs.c.id,
        _entity_jobs.c.kind,
        _entity_jobs.c.schema_id,
        _entity_jobs.c.schema_version,
        _entity_jobs.c.models,
        _entity_jobs.c.strategy,
        _entity_jobs.c.arbitration_model,
        _entity_jobs.c.total_entities,
        _entity_jobs.c.completed_entities,
        _entity_jobs.c.failed_entities,
        _entity_jobs.c.total_cost,
        _entity_jobs.c.created_at,
        _jobs.c.status,
        _jobs.c.state,
        _jobs.c.error,
        _jobs.c.started_at,
        _jobs.c.finished_at,
    )
    .join(_jobs, _jobs.c.id == _entity_jobs.c.id)
    .where(
        _entity_jobs.c.id == bindparam("job_id"),
        _entity_jobs.c.org_id == bindparam("org_id"),
        _entity_jobs.c.environment == bindparam("environment"),
    )
)


def _params(tenant: Tenant, job_id: str) -> dict[str, str]:
    return {"job_id": job_id, "org_id": tenant.org_id, "environment": tenant.environment.value}


def _resource(row: Any) -> JobOut:
    paused = (row.state or {}).get("paused") if row.status == "parked" else None
    if paused:
        paused = _shown(paused)
    return JobOut(
        job_id=row.id,
        kind=row.kind,
        status=public_status(row.status),
        schema_id=row.schema_id,
        schema_version=row.schema_version,
        models=list(row.models or []),
        strategy=row.strategy,
        arbitration_model=row.arbitration_model,
        total_entities=row.total_entities,
        completed_entities=row.completed_entities,
        failed_entities=row.failed_entities,
        total_cost=Decimal(row.total_cost or 0),
        paused=paused,
        error=(row.error or {}).get("message"),
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.finished_at if row.status in TERMINAL else None,
    )


def _shown(paused: dict[str, Any]) -> dict[str, Any]:
    """What paused a job, as clients see it (without the handler's own notes)."""
    return {key: value for key, value in paused.items() if not key.startswith("_")}


def _read_row(connection: Connection, params: dict[str, str]) -> Any:
    return connection.execute(_RESOURCE, params).one_or_none()


async def read(database: Database, tenant: Tenant, job_id: str) -> JobOut:
    """The job as committed; 404 when the tenant has no such job."""
    if len(job_id) > 40:
        raise not_found()
    row = await database.read(functools.partial(_read_row, params=_params(tenant, job_id)))
    if row is None:
        raise not_found()
    return _resource(row)


async def read_in(session: AsyncSession, tenant: Tenant, job_id: str) -> JobOut:
    """The job as `session` sees it (its own writes included)."""
    row = None
    if len(job_id) <= 40:
        row = (await session.execute(_RESOURCE, _params(tenant, job_id))).one_or_none()
    if row is None:
        raise not_found()
    return _resource(row)


def _status_of(job: JobOut) -> str:
    return job.status


def _key_reused(job_id: str) -> Conflict:
    return Conflict("This Idempotency-Key was used with a different request body")


def view(kind: str) -> JobView[JobOut]:
    return JobView(
        kind=kind,
        read=read,
        status=_status_of,
        reused=_key_reused,
        public_status=public_status,
        event=wire_event,
    )


# Streams and long-polls read any of the surface's jobs through this one.
VIEW = view(KINDS["enrichment"])


# -- creating ----------------------------------------------------------------------------------

_INSERT_ENTITY_JOB = _entity_jobs.insert()
_INSERT_ITEM = _items.insert()


async def create(
    session: AsyncSession,
    hub: JobHub,
    tenant: Tenant,
    *,
    job_id: str,
    kind: str,
    entities: Sequence[dict[str, Any]] = (),
    schema_id: str | None = None,
    schema_version: int | None = None,
    models: Sequence[str] = (),
    strategy: str | None = None,
    arbitration_model: str | None = None,
    options: dict[str, Any] | None = None,
) -> None:
    """The runtime's job, its EntityJob row and one item per entity, in the caller's
    transaction."""
    now = utcnow()
    await jobs.create(session, hub, job_id=job_id, tenant=tenant, kind=KINDS[kind], input={})
    await session.execute(
        _INSERT_ENTITY_JOB,
        {
            "id": job_id,
            "org_id": tenant.org_id,
            "environment": tenant.environment.value,
            "kind": kind,
            "schema_id": schema_id,
            "schema_version": schema_version,
            "models": list(models),
            "strategy": strategy,
            "arbitration_model": arbitration_model,
            "options": options or {},
            "total_entities": len(entities),
            "completed_entities": 0,
            "failed_entities": 0,
            "total_cost": Decimal(0),
            "created_at": now,
        },
    )
    if entities:
        await session.execute(
            _INSERT_ITEM,
            [
                {"job_id": job_id, "entity_index": n, "entity_data": data, "status": "pending"}
                for n, data in enumerate(entities)
            ],
        )


# -- holding, ending -----------------------------------------------------------------------

# The first write of every transaction of a handler: it goes on only while the job is
# running under this worker (on PostgreSQL the row lock orders it and a cancel; SQLite's
# one writer does the same).
_HOLD = (
    _jobs.update()
    .where(
        _jobs.c.id == bindparam("job_id"),
        _jobs.c.status == "running",
        _jobs.c.lease_owner == bindparam("owner"),
    )
    .values(updated_at=bindparam("now"))
)


async def hold(session: AsyncSession, ctx: JobContext) -> None:
    """Raise Stopped unless the job is still this worker's to run (cancelled, taken over)."""
    result = await session.execute(
        _HOLD, {"job_id": ctx.job_id, "owner": ctx.owner, "now": utcnow()}
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Stopped()


async def announce_end(
    session: AsyncSession,
    hub: JobHub,
    tenant: Tenant,
    job_id: str,
    error: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """After the job reached its final status: `error` (on a failure), then `completed`."""
    job = await read_in(session, tenant, job_id)
    events: list[tuple[str, dict[str, Any]]] = []
    if error is not None:
        events.append(("error", {"message": error}))
    events.append(
        (
            "completed",
            {
                "status": job.status,
                "total_entities": job.total_entities,
                "completed_entities": job.completed_entities,
                "failed_entities": job.failed_entities,
                "total_cost": float(job.total_cost),
                **(extra or {}),
            },
        )
    )
    await jobs.append_events(session, hub, job_id, events)


async def finish(
    ctx: JobContext,
    session: AsyncSession,
    *,
    error: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """End the job the handler ran: completed, or failed with `error`."""
    values: dict[str, Any] = {}
    if error is not None:
        values["error"] = {"code": "job_failed", "message": error}
    if await ctx.finish(session, "failed" if error is not None else "completed", **values):
        await announce_end(session, ctx.hub, ctx.tenant, ctx.job_id, error, extra)


async def cancel(session: AsyncSession, hub: JobHub, tenant: Tenant, job_id: str) -> JobOut:
    """Cancel a queued, running or paused job (a finished one is answered as it is)."""
    await read_in(session, tenant, job_id)
    won = await jobs.transition(
        session,
        hub,
        job_id,
        from_statuses=["queued", "running", "parked"],
        to="cancelled",
        cancel_requested=True,
    )
    if won:
        await announce_end(session, hub, tenant, job_id)
    return await read_in(session, tenant, job_id)


async def resume(session: AsyncSession, hub: JobHub, tenant: Tenant, job_id: str) -> JobOut:
    """Give a paused job back to the workers. What paused it (`state.paused`) is moved to
    `state.resumed`, which the handler reads to go past that point (for a classification
    mismatch: that entity is enriched without the check)."""
    job = await read_in(session, tenant, job_id)
    if job.status != "paused":
        raise Conflict(f"The job is not paused (its status is {job.status}): nothing to continue")
    row = await session.get(Job, job_id)
    assert row is not None
    paused = dict((row.state or {}).get("paused") or {})
    resumed = [*(row.state or {}).get("resumed", []), paused]
    if not await jobs.resume(session, hub, job_id, paused=None, resumed=resumed):
        raise Conflict("The job is no longer paused")
    await jobs.append_event(session, hub, job_id, "resumed", _shown(paused))
    return await read_in(session, tenant, job_id)


# -- kinds -----------------------------------------------------------------------------------


def spec(kind: str, handler: Callable[[JobContext], Awaitable[None]]) -> JobSpec:
    """A kind of this surface's jobs. A job whose worker died is queued again (the default
    `on_lost`) and resumes from what it committed; an unexpected error fails the job with
    `error` then `completed`."""

    async def fail(session: AsyncSession, hub: JobHub, job: Job, error: BaseException) -> None:
        message = error.message if isinstance(error, OpenEnrichError) else "Internal error"
        if await jobs.transition(
            session,
            hub,
            job.id,
            from_statuses=["running"],
            to="failed",
            owner=job.lease_owner,
            error={"code": "internal_error", "message": message},
        ):
            tenant = Tenant(job.org_id, Environment(job.environment))
            await announce_end(session, hub, tenant, job.id, message)

    return JobSpec(kind=KINDS[kind], handler=handler, on_error=fail)
