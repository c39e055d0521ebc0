"""The verification run as a job: its executor and what happens when it cannot finish."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.jobs import service as jobs
from openenrich.jobs.models import Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.worker import JobSpec
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant
from openenrich.verify import service
from openenrich.verify.executor import RunExecutor, execute_run


def _tenant(job: Job) -> Tenant:
    return Tenant(job.org_id, Environment(job.environment))


async def interrupt(session: AsyncSession, hub: JobHub, job: Job) -> None:
    """Its worker died: `interrupted`, safe to retry with the same Idempotency-Key."""
    if await jobs.transition(
        session, hub, job.id, from_statuses=["running"], to="interrupted", owner=job.lease_owner
    ):
        await service.announce_end(session, hub, _tenant(job), job.id)


async def expire_approval(session: AsyncSession, hub: JobHub, job: Job) -> None:
    """Nobody decided on the plan in time: `cancelled`."""
    if await jobs.transition(session, hub, job.id, from_statuses=["parked"], to="cancelled"):
        await service.announce_end(session, hub, _tenant(job), job.id)


async def fail(session: AsyncSession, hub: JobHub, job: Job, error: BaseException) -> None:
    message = "The run failed; work performed is billed. Retry with a fresh Idempotency-Key."
    if await jobs.transition(
        session,
        hub,
        job.id,
        from_statuses=["running"],
        to="failed",
        owner=job.lease_owner,
        error={"code": "internal_error", "message": message},
    ):
        await service.announce_end(session, hub, _tenant(job), job.id)


def run_spec(executor: RunExecutor = execute_run) -> JobSpec:
    return JobSpec(
        kind=service.RUN_KIND,
        handler=executor,
        on_lost=interrupt,
        on_park_expired=expire_approval,
        on_error=fail,
        limit_attempts=False,  # interrupted, however often: the client retries by its key
    )
