"""Lead jobs (enrichment, validation): one machinery, generic over what a job does to one
lead (a `Step`).

- **Targets.** A whole pipeline, its `limit` most recent leads, or `lead_ids` of the
  tenant (within the pipeline when one is named too). The leads are chosen when the job is
  created, with one INSERT … SELECT into `lead_job_items`, so "the 100 most recent" means
  the same leads after a restart. Ids that are not the tenant's leads are ignored:
  `total_leads` says how many were found.
- **Running.** The handler reads the pending items page by page and keeps up to
  `leads_job_concurrency` leads in flight (the gateway's limits apply on top). Results are
  committed as they come, a group at a time (whatever finished while the previous group
  was committing): each lead's result, its item's status, the job's counters and the
  events go in one transaction. So a cancel or a crash keeps every finished lead, and a
  restarted job starts again from the pending items: a finished lead is never run twice.
  Each group first updates the job row on the condition that it is still running under
  this worker: a cancel (or another worker's takeover) stops the job there, and on
  PostgreSQL the row lock orders that commit and a cancel.
- **Following.** The progress resource (`status` PENDING, IN_PROGRESS, COMPLETED, FAILED,
  CANCELLED, counters, the ids done and failed, per-lead errors), a long-poll, and an
  event stream through `jobs.stream.Feeds`: `job.created`, `job.started` (each attempt),
  `lead.completed` / `lead.failed` / `lead.skipped`, `job.progress` after each group, and
  last `job.completed` with the final status.
- **Ending.** Completion, a cancel or a failure writes `job.completed` and puts a webhook
  `<family>.<status>` (`enrichment.completed`, …) with the job record in the outbox, in
  the transaction that changes the status.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, FromClause, Row, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import Database, table
from openenrich.errors import BadRequest, Conflict, NotFound, OpenEnrichError
from openenrich.ids import is_uuid, new_uuid, utcnow
from openenrich.jobs import service as jobs
from openenrich.jobs.models import TERMINAL, Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.view import JobView
from openenrich.jobs.worker import JobContext, JobSpec, Stopped, error_code
from openenrich.json_output import json_values
from openenrich.leads.lookup import owned
from openenrich.leads.models import (
    LEAD_FIELDS,
    Lead,
    LeadJob,
    LeadJobItem,
    Pipeline,
    PipelineLead,
)
from openenrich.leads.schemas import LeadJobProgress, LeadJobRecord
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant
from openenrich.webhooks import service as webhooks

logger = logging.getLogger("openenrich.leads")

# The job runtime's statuses in the reference's words.
PUBLIC_STATUS = {
    "queued": "PENDING",
    "running": "IN_PROGRESS",
    "parked": "IN_PROGRESS",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
    "interrupted": "FAILED",  # lead jobs are queued again instead (on_lost)
}
MAX_LISTED_IDS = 10_000  # lead ids in a progress answer, of each list
PAGE = 500  # pending items read at a time
GROUP_MAX = 256  # results committed together at most
# How long a finished lead waits for others to share its commit. A crash loses at most
# this much finished work (those leads are asked again); a commit per lead would cost a
# busy job more than its model calls.
GROUP_LINGER = 0.02
COUNTERS = (
    "processed_leads",
    "failed_leads",
    "skipped_leads",
    "valid_leads",
    "invalid_leads",
    "risky_leads",
    "unknown_leads",
)

_jobs = table(Job)
_lead_jobs = table(LeadJob)
_items = table(LeadJobItem)
_leads = table(Lead)
_pipeline_leads = table(PipelineLead)


def public_status(status: str) -> str:
    return PUBLIC_STATUS.get(status, "FAILED")


# -- a family of lead jobs -----------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One kind of lead job as the reference shows it: `enrichment` or `validation`."""

    name: str  # enrichment, validation: paths, `lead_jobs.family`, webhook types
    kind: str  # the job runtime's kind
    type_field: str  # where the resources show `lead_jobs.type`: enrichment_type, service
    label: str  # "Enrichment job": its 404 says "Enrichment job not found"
    progress: type[LeadJobProgress]
    record: type[LeadJobRecord]
    view: JobView[LeadJobProgress] = field(init=False)

    def __post_init__(self) -> None:
        view: JobView[LeadJobProgress] = JobView(
            kind=self.kind,
            read=functools.partial(read_progress, family=self),
            status=_status_of,
            reused=_key_reused,
            public_status=public_status,
        )
        object.__setattr__(self, "view", view)

    def not_found(self) -> NotFound:
        return NotFound(f"{self.label} not found")


def _status_of(progress: LeadJobProgress) -> str:
    return progress.status


def _key_reused(job_id: str) -> Conflict:
    return Conflict(
        "This Idempotency-Key was used with a different request body", extra={"job_id": job_id}
    )


# -- targets and creation --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Targets:
    pipeline_id: str | None
    lead_ids: tuple[str, ...] | None
    limit: int | None


def targets(pipeline_id: str | None, lead_ids: Sequence[str] | None, limit: int | None) -> Targets:
    if pipeline_id is None and lead_ids is None:
        raise BadRequest("pipeline_id or lead_ids is required")
    ids = None if lead_ids is None else tuple(dict.fromkeys(i for i in lead_ids if is_uuid(i)))
    return Targets(pipeline_id, ids, limit)


async def check_targets(session: AsyncSession, tenant: Tenant, chosen: Targets) -> None:
    """The pipeline's 404, before anything else is looked at."""
    if chosen.pipeline_id is not None:
        await owned(session, tenant, Pipeline, chosen.pipeline_id, "Pipeline not found")


_INSERT_LEAD_JOB = _lead_jobs.insert()
_SET_TOTAL = (
    _lead_jobs.update()
    .where(_lead_jobs.c.id == bindparam("job_id"))
    .values(total_leads=bindparam("total"))
)
_SET_JOB_TOTAL = (
    _jobs.update()
    .where(_jobs.c.id == bindparam("job_id"))
    .values(progress_total=bindparam("total"))
)
_COUNT_ITEMS = select(func.count()).where(_items.c.job_id == bindparam("job_id"))
_ITEM_COLUMNS = ["job_id", "position", "lead_id", "pipeline_lead_id", "status"]


def _choose(job_id: str, tenant: Tenant, chosen: Targets) -> Any:
    """INSERT … SELECT of the job's items, newest lead first (position 1)."""
    if chosen.pipeline_id is not None:
        source: FromClause = _pipeline_leads
        order = (source.c.created_at.desc(), source.c.id.desc())
        conditions = [source.c.pipeline_id == chosen.pipeline_id]
        lead_id: Any = source.c.lead_id
        pipeline_lead_id: Any = source.c.id
    else:
        # A lead is in one pipeline (uploads skip an address the account has anywhere):
        # its row there is the item's, so a step sees the lead's validation status too.
        source = _leads.outerjoin(_pipeline_leads, _pipeline_leads.c.lead_id == _leads.c.id)
        order = (_leads.c.created_at.desc(), _leads.c.id.desc())
        conditions = [
            _leads.c.org_id == tenant.org_id,
            _leads.c.environment == tenant.environment.value,
        ]
        lead_id, pipeline_lead_id = _leads.c.id, _pipeline_leads.c.id
    if chosen.lead_ids is not None:
        conditions.append(lead_id.in_(chosen.lead_ids))
    rows = (
        select(
            literal(job_id),
            func.row_number().over(order_by=order),
            lead_id,
            pipeline_lead_id,
            literal("pending"),
        )
        .select_from(source)
        .where(*conditions)
        .order_by(*order)
    )
    if chosen.limit is not None:
        rows = rows.limit(chosen.limit)
    return _items.insert().from_select(_ITEM_COLUMNS, rows)


async def create(
    session: AsyncSession,
    hub: JobHub,
    family: Family,
    tenant: Tenant,
    chosen: Targets,
    type: str,
    config: dict[str, Any],
) -> str:
    """The job, its LeadJob row and its items, in the caller's transaction; its id."""
    await check_targets(session, tenant, chosen)
    job_id = new_uuid()
    now = utcnow()
    await jobs.create(session, hub, job_id=job_id, tenant=tenant, kind=family.kind, input={})
    await session.execute(
        _INSERT_LEAD_JOB,
        {
            "id": job_id,
            "org_id": tenant.org_id,
            "environment": tenant.environment.value,
            "pipeline_id": chosen.pipeline_id,
            "family": family.name,
            "type": type,
            "config": config,
            "total_leads": 0,
            **dict.fromkeys(COUNTERS, 0),
            "created_at": now,
        },
    )
    total = 0
    if chosen.lead_ids != ():
        await session.execute(_choose(job_id, tenant, chosen))
        # Counted, not taken from the INSERT's rowcount, which psycopg leaves at -1 here.
        total = int(await session.scalar(_COUNT_ITEMS, {"job_id": job_id}) or 0)
    await session.execute(_SET_TOTAL, {"job_id": job_id, "total": total})
    await session.execute(_SET_JOB_TOTAL, {"job_id": job_id, "total": total})
    await jobs.append_event(
        session,
        hub,
        job_id,
        "job.created",
        {"job_id": job_id, family.type_field: type, "total_leads": total},
    )
    return job_id


# -- the resources -----------------------------------------------------------------------------

_RECORD = (
    select(
        _lead_jobs.c.id,
        _lead_jobs.c.pipeline_id,
        _lead_jobs.c.type,
        _lead_jobs.c.config,
        _lead_jobs.c.total_leads,
        *(_lead_jobs.c[name] for name in COUNTERS),
        _lead_jobs.c.created_at,
        _jobs.c.status,
        _jobs.c.error,
        _jobs.c.started_at,
        _jobs.c.finished_at,
    )
    .join(_jobs, _jobs.c.id == _lead_jobs.c.id)
    .where(
        _lead_jobs.c.id == bindparam("job_id"),
        _lead_jobs.c.org_id == bindparam("org_id"),
        _lead_jobs.c.environment == bindparam("environment"),
        _lead_jobs.c.family == bindparam("family"),
    )
)
_ITEMS_WITH_STATUS = (
    select(_items.c.lead_id, _items.c.error)
    .where(_items.c.job_id == bindparam("job_id"), _items.c.status == bindparam("status"))
    .order_by(_items.c.position)
    .limit(MAX_LISTED_IDS + 1)
)

AnyRow = Row[Any, *tuple[Any, ...]]


def _params(family: Family, tenant: Tenant, job_id: str) -> dict[str, str]:
    return {
        "job_id": job_id,
        "org_id": tenant.org_id,
        "environment": tenant.environment.value,
        "family": family.name,
    }


def _values(family: Family, row: AnyRow) -> dict[str, Any]:
    status = public_status(row.status)
    total = row.total_leads
    handled = row.processed_leads + row.skipped_leads
    if total:
        percentage = round(min(handled, total) * 100 / total, 2)
    else:
        percentage = 100.0 if status == "COMPLETED" else 0.0
    return {
        "job_id": row.id,
        "pipeline_id": row.pipeline_id,
        family.type_field: row.type,
        "status": status,
        "progress_percentage": percentage,
        "total_leads": total,
        **{name: row._mapping[name] for name in COUNTERS},
        "config": row.config or {},
        "error": (row.error or {}).get("message"),
        "created_at": row.created_at,
        "started_at": row.started_at,
        "completed_at": row.finished_at if row.status in TERMINAL else None,
    }


def _progress(
    family: Family, row: AnyRow, done: Sequence[AnyRow], failed: Sequence[AnyRow]
) -> LeadJobProgress:
    truncated = len(done) > MAX_LISTED_IDS or len(failed) > MAX_LISTED_IDS
    done, failed = done[:MAX_LISTED_IDS], failed[:MAX_LISTED_IDS]
    return family.progress.model_validate(
        {
            **_values(family, row),
            "completed_lead_ids": [item.lead_id for item in done],
            "failed_lead_ids": [item.lead_id for item in failed],
            "lead_errors": {item.lead_id: item.error or "" for item in failed},
            "lead_ids_truncated": truncated,
        }
    )


def _progress_rows(
    connection: Connection, params: dict[str, str]
) -> tuple[AnyRow, list[AnyRow], list[AnyRow]] | None:
    row = connection.execute(_RECORD, params).one_or_none()
    if row is None:
        return None
    job = {"job_id": params["job_id"]}
    done = list(connection.execute(_ITEMS_WITH_STATUS, {**job, "status": "done"}))
    failed = list(connection.execute(_ITEMS_WITH_STATUS, {**job, "status": "failed"}))
    return row, done, failed


async def read_progress(
    database: Database, tenant: Tenant, job_id: str, *, family: Family
) -> LeadJobProgress:
    """The progress resource as committed (GETs, long-polls, event streams' 404)."""
    if not is_uuid(job_id):
        raise family.not_found()
    found = await database.read(
        functools.partial(_progress_rows, params=_params(family, tenant, job_id))
    )
    if found is None:
        raise family.not_found()
    return _progress(family, *found)


async def progress_in(
    session: AsyncSession, family: Family, tenant: Tenant, job_id: str
) -> LeadJobProgress:
    """The progress resource as `session` sees it (its own writes included)."""
    row = await _record_row(session, family, tenant, job_id)
    job = {"job_id": job_id}
    done = list(await session.execute(_ITEMS_WITH_STATUS, {**job, "status": "done"}))
    failed = list(await session.execute(_ITEMS_WITH_STATUS, {**job, "status": "failed"}))
    return _progress(family, row, done, failed)


async def _record_row(session: AsyncSession, family: Family, tenant: Tenant, job_id: str) -> AnyRow:
    row = None
    if is_uuid(job_id):
        row = (await session.execute(_RECORD, _params(family, tenant, job_id))).one_or_none()
    if row is None:
        raise family.not_found()
    return row


async def record_in(
    session: AsyncSession, family: Family, tenant: Tenant, job_id: str
) -> LeadJobRecord:
    return family.record.model_validate(
        _values(family, await _record_row(session, family, tenant, job_id))
    )


async def read_record(
    database: Database, family: Family, tenant: Tenant, job_id: str
) -> LeadJobRecord:
    """The job record as committed."""
    if not is_uuid(job_id):
        raise family.not_found()
    params = _params(family, tenant, job_id)
    row = await database.read(lambda connection: connection.execute(_RECORD, params).one_or_none())
    if row is None:
        raise family.not_found()
    return family.record.model_validate(_values(family, row))


# -- ending ------------------------------------------------------------------------------------


async def announce_end(
    session: AsyncSession, hub: JobHub, family: Family, tenant: Tenant, job_id: str
) -> None:
    """After the job reached its final status: its last event and its webhook."""
    record = await record_in(session, family, tenant, job_id)
    await jobs.append_event(
        session,
        hub,
        job_id,
        "job.completed",
        {
            "status": record.status,
            "total_leads": record.total_leads,
            "processed_leads": record.processed_leads,
            "failed_leads": record.failed_leads,
        },
    )
    await webhooks.enqueue(
        session, hub, tenant, f"{family.name}.{record.status.lower()}", json_values(record)
    )


async def cancel(
    session: AsyncSession, hub: JobHub, family: Family, tenant: Tenant, job_id: str
) -> LeadJobProgress:
    """Cancel at once; the worker stops at its next commit, so leads already finished keep
    their results. A job that has ended is left as it is (and returned as it is)."""
    await _record_row(session, family, tenant, job_id)
    won = await jobs.transition(
        session,
        hub,
        job_id,
        from_statuses=["queued", "running", "parked"],
        to="cancelled",
        cancel_requested=True,
    )
    if won:
        await announce_end(session, hub, family, tenant, job_id)
    return await progress_in(session, family, tenant, job_id)


def spec(family: Family, handler: Callable[[JobContext], Awaitable[None]]) -> JobSpec:
    """The family's job kind. A job whose worker died is queued again (the default
    `on_lost`): it resumes from its pending items. One that has been claimed
    `job_max_attempts` times fails instead, like a job whose handler raised."""

    async def fail(session: AsyncSession, hub: JobHub, job: Job, error: BaseException) -> None:
        message = str(error) if isinstance(error, OpenEnrichError) else "Internal error"
        if await jobs.transition(
            session,
            hub,
            job.id,
            from_statuses=["running"],
            to="failed",
            owner=job.lease_owner,
            error={"code": error_code(error), "message": f"The job failed: {message}"},
        ):
            tenant = Tenant(job.org_id, Environment(job.environment))
            await announce_end(session, hub, family, tenant, job.id)

    return JobSpec(kind=family.kind, handler=handler, on_error=fail)


# -- running -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One lead of a job, as its step sees it."""

    position: int
    lead_id: str
    pipeline_lead_id: str | None
    # email, the LEAD_FIELDS, custom_fields, enrichment_status; None when the lead is gone.
    lead: dict[str, Any] | None
    validation_status: str | None  # the pipeline lead's, when the job names a pipeline


Status = Literal["done", "failed", "skipped"]


@dataclass(slots=True)
class Outcome:
    item: Item
    status: Status
    error: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # what the step's record writes
    counters: dict[str, int] = field(default_factory=dict)  # valid_leads … to add


class Step(Protocol):
    """What a job does to one lead (`run`: no database writes), and how a group of results
    is stored (`record`, in the group's transaction, after the job's own writes)."""

    async def run(self, item: Item) -> Outcome: ...

    async def record(self, session: AsyncSession, outcomes: Sequence[Outcome]) -> None: ...


_LEAD_COLUMNS = [
    _leads.c.id.label("found_id"),
    _leads.c.email,
    *(_leads.c[name] for name in LEAD_FIELDS),
    _leads.c.custom_fields,
    _leads.c.enrichment_status,
]
_PENDING = (
    select(
        _items.c.position,
        _items.c.lead_id,
        _items.c.pipeline_lead_id,
        *_LEAD_COLUMNS,
        _pipeline_leads.c.email_validation_status,
    )
    .select_from(
        _items.outerjoin(_leads, _leads.c.id == _items.c.lead_id).outerjoin(
            _pipeline_leads, _pipeline_leads.c.id == _items.c.pipeline_lead_id
        )
    )
    .where(
        _items.c.job_id == bindparam("job_id"),
        _items.c.status == "pending",
        _items.c.position > bindparam("after"),
    )
    .order_by(_items.c.position)
    .limit(PAGE)
)
_JOB = select(_lead_jobs.c.type, _lead_jobs.c.config).where(_lead_jobs.c.id == bindparam("job_id"))
# The job's own write, first in every transaction of the handler: it goes on only while
# the job is running under this worker.
_HOLD = (
    _jobs.update()
    .where(
        _jobs.c.id == bindparam("job_id"),
        _jobs.c.status == "running",
        _jobs.c.lease_owner == bindparam("owner"),
    )
    .values(updated_at=bindparam("now"), progress_done=_jobs.c.progress_done + bindparam("done"))
)
_FINISH_ITEM = (
    _items.update()
    .where(
        _items.c.job_id == bindparam("item_job_id"),
        _items.c.position == bindparam("item_position"),
        _items.c.status == "pending",
    )
    .values(
        status=bindparam("set_status"),
        error=bindparam("set_error"),
        finished_at=bindparam("now"),
    )
)
_COUNT = (
    _lead_jobs.update()
    .where(_lead_jobs.c.id == bindparam("job_id"))
    .values({name: _lead_jobs.c[name] + bindparam(f"add_{name}") for name in COUNTERS})
    .returning(_lead_jobs.c.total_leads, *(_lead_jobs.c[name] for name in COUNTERS))
)
_EVENT_NAMES = {"done": "lead.completed", "failed": "lead.failed", "skipped": "lead.skipped"}
_ERROR_LIMIT = 1000  # characters of a lead's error kept


def _item(row: AnyRow) -> Item:
    lead = None
    if row.found_id is not None:
        lead = {
            "email": row.email,
            **{name: row._mapping[name] for name in LEAD_FIELDS},
            "custom_fields": row.custom_fields or {},
            "enrichment_status": row.enrichment_status,
        }
    return Item(row.position, row.lead_id, row.pipeline_lead_id, lead, row.email_validation_status)


async def _hold(session: AsyncSession, ctx: JobContext, done: int) -> None:
    result = await session.execute(
        _HOLD, {"job_id": ctx.job_id, "owner": ctx.owner, "now": utcnow(), "done": done}
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Stopped()


MakeStep = Callable[[JobContext, str, dict[str, Any]], Awaitable[Step]]


async def execute(ctx: JobContext, family: Family, make_step: MakeStep) -> None:
    """A lead job's handler: `make_step(ctx, type, config)` says what to do to each lead."""
    async with ctx.transaction() as session:
        await _hold(session, ctx, 0)
        job = (await session.execute(_JOB, {"job_id": ctx.job_id})).one()
        await ctx.emit("job.started", {"attempt": ctx.attempt}, session)
    step = await make_step(ctx, job.type, dict(job.config or {}))
    await _run(ctx, step, ctx.settings.leads_job_concurrency)
    async with ctx.transaction() as session:
        if await ctx.finish(session, "completed"):
            await announce_end(session, ctx.hub, family, ctx.tenant, ctx.job_id)


def _pending_page(connection: Connection, job_id: str, after: int) -> list[AnyRow]:
    return list(connection.execute(_PENDING, {"job_id": job_id, "after": after}))


async def _pending(ctx: JobContext) -> AsyncIterator[Item]:
    """The job's pending items in order, a page at a time (items finished meanwhile are
    left behind by the position they were read up to)."""
    after = 0
    while True:
        rows = await ctx.database.read(
            functools.partial(_pending_page, job_id=ctx.job_id, after=after)
        )
        for row in rows:
            yield _item(row)
        if len(rows) < PAGE:
            return
        after = rows[-1].position


async def _attempt(step: Step, item: Item) -> Outcome:
    """The step's outcome for one lead; what goes wrong with one lead is that lead's error."""
    if item.lead is None:
        return Outcome(item, "failed", "The lead no longer exists")
    try:
        return await step.run(item)
    except OpenEnrichError as error:
        return Outcome(item, "failed", error.message)
    except Exception:
        logger.exception("lead %s failed", item.lead_id)
        return Outcome(item, "failed", "Internal error")


class _End:
    """The producer has no more results."""


@dataclass(frozen=True, slots=True)
class _Crash:
    error: BaseException


async def _run(ctx: JobContext, step: Step, window: int) -> None:
    results: asyncio.Queue[Outcome | _End | _Crash] = asyncio.Queue()
    slots = asyncio.Semaphore(window)
    running: set[asyncio.Task[None]] = set()

    async def one(item: Item) -> None:
        try:
            results.put_nowait(await _attempt(step, item))
        finally:
            slots.release()

    async def produce() -> None:
        try:
            async for item in _pending(ctx):
                await slots.acquire()
                task = asyncio.get_running_loop().create_task(one(item))
                running.add(task)
                task.add_done_callback(running.discard)
            while running:
                await asyncio.gather(*running)
            results.put_nowait(_End())
        except Exception as error:
            results.put_nowait(_Crash(error))

    producer = asyncio.get_running_loop().create_task(produce())
    try:
        await _commit_all(ctx, step, results)
    finally:
        producer.cancel()
        for task in list(running):
            task.cancel()
        await asyncio.gather(producer, *running, return_exceptions=True)


async def _commit_all(
    ctx: JobContext, step: Step, results: asyncio.Queue[Outcome | _End | _Crash]
) -> None:
    """Commit results in groups: the first result waits up to GROUP_LINGER for others to
    join it (so a busy job commits a few times a second, not once per lead), and whatever
    finished while the previous group was committing goes with the next."""
    loop = asyncio.get_running_loop()
    while True:
        got = await results.get()
        batch: list[Outcome] = []
        closes = loop.time() + GROUP_LINGER
        while True:
            if isinstance(got, _Crash):
                raise got.error
            if isinstance(got, _End):
                if batch:
                    await _commit(ctx, step, batch)
                return
            batch.append(got)
            if len(batch) >= GROUP_MAX:
                break
            if results.empty():
                remaining = closes - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        got = await results.get()
                except TimeoutError:
                    break
            else:
                got = results.get_nowait()
        await _commit(ctx, step, batch)


async def _commit(ctx: JobContext, step: Step, batch: list[Outcome]) -> None:
    now = utcnow()
    added = dict.fromkeys(COUNTERS, 0)
    for outcome in batch:
        if outcome.status == "skipped":
            added["skipped_leads"] += 1
        else:
            added["processed_leads"] += 1
            added["failed_leads"] += outcome.status == "failed"
        for name, value in outcome.counters.items():
            added[name] += value
    async with ctx.transaction() as session:
        await _hold(session, ctx, len(batch))  # first: on SQLite it takes the write lock
        await session.execute(
            _FINISH_ITEM,
            [
                {
                    "item_job_id": ctx.job_id,
                    "item_position": outcome.item.position,
                    "set_status": outcome.status,
                    "set_error": outcome.error[:_ERROR_LIMIT] if outcome.error else None,
                    "now": now,
                }
                for outcome in batch
            ],
        )
        await step.record(session, batch)
        counts = (
            await session.execute(
                _COUNT,
                {"job_id": ctx.job_id, **{f"add_{name}": n for name, n in added.items()}},
            )
        ).one()
        events = [(_EVENT_NAMES[outcome.status], _event(outcome)) for outcome in batch]
        events.append(("job.progress", _progress_event(counts)))
        await ctx.emit_all(events, session)


def _event(outcome: Outcome) -> dict[str, Any]:
    data: dict[str, Any] = {"lead_id": outcome.item.lead_id}
    if outcome.status == "failed":
        data["error"] = outcome.error
    elif outcome.values:
        data["values"] = outcome.values
    return data


def _progress_event(counts: AnyRow) -> dict[str, Any]:
    total = counts.total_leads
    handled = counts.processed_leads + counts.skipped_leads
    return {
        "processed_leads": counts.processed_leads,
        "failed_leads": counts.failed_leads,
        "skipped_leads": counts.skipped_leads,
        "total_leads": total,
        "progress_percentage": round(min(handled, total) * 100 / total, 2) if total else 100.0,
    }
