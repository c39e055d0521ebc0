"""Verification runs: creation (idempotent), the run resource, approval, cancel, threads,
workflows and usage. Nothing here imports the web framework; only creation commits, in
the job facility (`jobs.idempotency`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.billing import service as billing
from openenrich.db import Database, table
from openenrich.errors import Conflict, Forbidden, InvalidRequest, NotFound, RateLimited
from openenrich.ids import isoformat, new_id, utcnow
from openenrich.jobs import service as jobs
from openenrich.jobs.idempotency import Created, Idempotency, create_once
from openenrich.jobs.models import TERMINAL, Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.view import JobView
from openenrich.json_output import json_values
from openenrich.tenancy.ratelimit import RateLimiter
from openenrich.tenancy.tenant import Principal, Tenant
from openenrich.verify import links, queries
from openenrich.verify.models import Run, Thread, Workflow
from openenrich.verify.pdf import pdf_path, render_pdf, write_pdf
from openenrich.verify.schemas import (
    RunList,
    RunOut,
    ThreadRuns,
    Usage,
    WorkflowDetail,
    WorkflowOut,
)
from openenrich.verify.workflows import (
    BUILT_IN,
    InvalidWorkflow,
    WorkflowSpec,
    checks_in,
    front_matter,
    spec_from_markdown,
)
from openenrich.webhooks import service as webhooks
from openenrich.webhooks.refresh import register_refresher

RUN_KIND = "verify.run"
METADATA_LIMIT = 2048


def public_status(status: str) -> str:
    """The job runtime's `parked` is the reference's `requires_approval`."""
    return "requires_approval" if status == "parked" else status


# -- the run resource ----------------------------------------------------------------------


def render(run: Any, calls: Sequence[Any]) -> RunOut:
    """The run resource, every field of the reference's, from a `queries.RUN` row and its
    `queries.CALLS` rows. `credits_used` is what the run's billed checks cost: the same
    numbers the ledger holds (both are written in one transaction)."""
    credits_used = sum((c.credits for c in calls if c.billed), Decimal(0))
    steps: list[dict[str, Any]] = [
        {"type": "tool_call", "name": c.name, "status": c.status, "id": c.id, "credits": c.credits}
        for c in calls
    ]
    if run.report is not None:
        steps.append({"type": "report"})
    if run.answer:
        steps.append({"type": "text", "content": run.answer})
    status = public_status(run.status)
    # One validation from plain values: cheaper than building each part as a model.
    return RunOut.model_validate(
        {
            "id": run.id,
            "thread_id": run.thread_id,
            "status": status,
            "input": {"message": run.message, "workflow": run.workflow},
            "answer": run.answer,
            "steps": steps,
            "report": run.report,
            "report_url": links.report_url(run.report_link, run.id),
            "plan": run.plan if status == "requires_approval" else None,
            "error": run.error,
            "credits_used": credits_used,
            "tool_calls": calls,  # rows: ToolCallOut reads their attributes
            "metadata": run.metadata_,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "completed_at": run.finished_at if run.status in TERMINAL else None,
        }
    )


def _not_found(run_id: str) -> NotFound:
    return NotFound("Run not found", run_id=run_id)


async def resource(session: AsyncSession, tenant: Tenant, run_id: str) -> RunOut:
    """The run as this session sees it (its own writes included)."""
    params = {"run_id": run_id, "org_id": tenant.org_id, "environment": tenant.environment.value}
    run = (await session.execute(queries.RUN, params)).one_or_none()
    if run is None:
        raise _not_found(run_id)
    calls = list(await session.execute(queries.CALLS, {"run_id": run_id}))
    return render(run, calls)


async def read_resource(database: Database, tenant: Tenant, run_id: str) -> RunOut:
    """The run as committed, read on the fastest path (for GETs, long-polls)."""
    found = await database.read(
        lambda connection: queries.run_rows(
            connection, run_id, tenant.org_id, tenant.environment.value
        )
    )
    if found is None:
        raise _not_found(run_id)
    return render(*found)


def _status(run: RunOut) -> str:
    return run.status


def _key_reused(run_id: str) -> Conflict:
    return Conflict(
        "This Idempotency-Key was used with a different request body",
        code="idempotency_key_reuse",
        run_id=run_id,
    )


# Runs as the job facility shows them: long-polls, event streams, idempotent creation.
RUNS = JobView(
    kind=RUN_KIND,
    read=read_resource,
    status=_status,
    reused=_key_reused,
    public_status=public_status,
)


async def load(session: AsyncSession, tenant: Tenant, run_id: str) -> tuple[Run, Job]:
    row = (
        await session.execute(
            select(Run, Job)
            .join(Job, Job.id == Run.id)
            .where(
                Run.id == run_id,
                tenant.owns(Run),
            )
        )
    ).one_or_none()
    if row is None:
        raise _not_found(run_id)
    run, job = row
    return run, job


async def announce_end(session: AsyncSession, hub: JobHub, tenant: Tenant, run_id: str) -> None:
    """After a run reached a terminal status: its last event and its webhook."""
    body = json_values(await resource(session, tenant, run_id))
    await jobs.append_event(
        session,
        hub,
        run_id,
        "run.completed",
        {
            "status": body["status"],
            "credits_used": body["credits_used"],
            "report_url": body["report_url"],
        },
    )
    await webhooks.enqueue(session, hub, tenant, f"run.{body['status']}", body)


# -- workflows -----------------------------------------------------------------------------


async def custom_workflows(session: AsyncSession, tenant: Tenant) -> dict[str, Workflow]:
    rows = await session.scalars(select(Workflow).where(tenant.owns(Workflow)))
    return {row.slug: row for row in rows}


def spec_of(workflow: Workflow | queries.AnyRow) -> WorkflowSpec:
    return spec_from_markdown(
        workflow.slug,
        workflow.content,
        name=workflow.name,
        description=workflow.description,
        scope="org",
        is_active=workflow.is_active,
    )


async def find_workflow(session: AsyncSession, tenant: Tenant, slug: str) -> WorkflowSpec:
    """The workflow a run may follow: the organisation's own, else the built-in."""
    custom = (
        await session.execute(
            queries.WORKFLOW,
            {"org_id": tenant.org_id, "environment": tenant.environment.value, "slug": slug},
        )
    ).one_or_none()
    spec = spec_of(custom) if custom is not None else BUILT_IN.get(slug)
    if spec is None or not spec.is_active:
        raise NotFound(f"Workflow '{slug}' not found", code="workflow_not_found")
    return spec


async def list_workflows(session: AsyncSession, tenant: Tenant) -> list[WorkflowOut]:
    custom = await custom_workflows(session, tenant)
    listed = []
    for slug, builtin in BUILT_IN.items():
        if slug not in custom:
            listed.append(_workflow_out(builtin))
    listed += [_workflow_out(spec_of(row)) for row in custom.values()]
    return listed


async def workflow(session: AsyncSession, tenant: Tenant, slug: str) -> WorkflowDetail:
    """The workflow runs naming `slug` follow: the organisation's own, else the built-in."""
    own = (await custom_workflows(session, tenant)).get(slug)
    spec = spec_of(own) if own is not None else BUILT_IN.get(slug)
    if spec is None:
        raise NotFound(f"Workflow '{slug}' not found", code="workflow_not_found")
    return WorkflowDetail(**_workflow_out(spec).model_dump(), content=spec.content)


def _workflow_out(spec: WorkflowSpec) -> WorkflowOut:
    return WorkflowOut(
        slug=spec.slug,
        name=spec.name,
        description=spec.description,
        scope=spec.scope,
        is_active=spec.is_active,
        checks=spec.checks,
    )


async def save_workflow(
    session: AsyncSession, tenant: Tenant, slug: str, changes: dict[str, Any], *, create: bool
) -> WorkflowOut:
    existing = (await custom_workflows(session, tenant)).get(slug)
    if create and existing is not None:
        raise Conflict(f"Workflow '{slug}' already exists", code="workflow_exists")
    if not create and existing is None:
        raise NotFound(f"Workflow '{slug}' not found", code="workflow_not_found")
    workflow = existing or Workflow(
        id=new_id("wf"),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        slug=slug,
        name=changes.get("name") or slug.replace("-", " ").title(),
        description="",
        content="",
        is_active=True,
    )
    for field in ("name", "description", "content", "is_active"):
        if field in changes and changes[field] is not None:
            setattr(workflow, field, changes[field])
    try:
        matter = front_matter(workflow.content)
    except InvalidWorkflow as error:
        raise InvalidRequest(f"content: {error}") from None
    if matter is None and not checks_in(workflow.content):
        raise InvalidRequest(
            "content: name at least one check, e.g. `pan_verification` (see GET /api/v1/workflows)"
        )
    if matter is not None:
        # The front matter's name and description, unless the request gave its own.
        if matter.name and not changes.get("name") and existing is None:
            workflow.name = matter.name
        if matter.description and not changes.get("description") and existing is None:
            workflow.description = matter.description
    workflow.updated_at = utcnow()
    session.add(workflow)
    await session.flush()
    return _workflow_out(spec_of(workflow))


# -- creating runs ---------------------------------------------------------------------------

_INSERT_THREAD = table(Thread).insert()
_INSERT_RUN = table(Run).insert()


@dataclass(frozen=True, slots=True)
class NewRun:
    message: str
    workflow: str | None
    thread_id: str | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Limits:
    """What one key may start (the reference's limits): runs a minute, and runs at once."""

    limiter: RateLimiter
    per_minute: int
    max_active: int


def check_metadata(metadata: dict[str, Any] | None) -> None:
    if metadata is not None and len(orjson.dumps(metadata)) > METADATA_LIMIT:
        raise InvalidRequest(f"metadata: must be at most {METADATA_LIMIT} bytes of JSON")


async def limit(
    limiter: RateLimiter, bucket: str, per_minute: int, retry_after: int | None = None
) -> None:
    """Take a token from `bucket` (`per_minute` a minute) or refuse with a 429."""
    decision = await limiter.take(bucket, per_minute / 60, capacity=per_minute)
    if not decision.allowed:
        headers = decision.headers()
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        raise RateLimited("Rate limit exceeded; respect the Retry-After header", headers=headers)


async def active_runs(session: AsyncSession, api_key_id: str) -> int:
    """Queued and running runs of a key (parked approvals do not count)."""
    return int(await session.scalar(queries.ACTIVE_RUNS, {"api_key_id": api_key_id}) or 0)


async def create_or_replay(
    database: Database,
    hub: JobHub,
    principal: Principal,
    new: NewRun,
    idempotency: Idempotency | None,
    limits: Limits,
) -> Created[RunOut]:
    """A new run, committed, or the run an earlier request with the same Idempotency-Key
    made (an interrupted one queued again). A replay is not counted against the key's
    limits."""

    async def create(session: AsyncSession) -> str:
        await limit(limits.limiter, f"runs-create:{principal.key_id}", limits.per_minute, 60)
        if await active_runs(session, principal.key_id) >= limits.max_active:
            raise RateLimited(
                f"This key already has {limits.max_active} active runs",
                headers={"Retry-After": "10"},
            )
        return await create_run(session, hub, principal, new)

    async def describe(session: AsyncSession, run_id: str) -> RunOut:
        return await resource(session, principal.tenant, run_id)

    return await create_once(database, hub, RUNS, principal.tenant, idempotency, create, describe)


async def create_run(session: AsyncSession, hub: JobHub, principal: Principal, new: NewRun) -> str:
    """Insert the run and its job; returns the run's id. The caller commits."""
    tenant = principal.tenant
    check_metadata(new.metadata)
    workflow = await find_workflow(session, tenant, new.workflow) if new.workflow else None
    await billing.admit(session, tenant, principal.plan)
    if new.thread_id is not None:
        thread = await session.get(Thread, new.thread_id)
        if thread is None or (thread.org_id, thread.environment) != (
            tenant.org_id,
            tenant.environment.value,
        ):
            raise NotFound("Thread not found")
        thread_id = thread.id
    else:
        thread_id = new_id("th")
    run_id = new_id("run")
    now = utcnow()
    owner = {"org_id": tenant.org_id, "environment": tenant.environment.value}
    if new.thread_id is None:
        await session.execute(_INSERT_THREAD, {"id": thread_id, "created_at": now, **owner})
    await session.execute(
        _INSERT_RUN,
        {
            "id": run_id,
            "thread_id": thread_id,
            "api_key_id": principal.key_id,
            "message": new.message,
            "workflow": workflow.slug if workflow else None,
            "metadata": new.metadata,
            "auto_approve": principal.auto_approve,
            "answer": None,
            "report": None,
            "plan": None,
            "created_at": now,
            **owner,
        },
    )
    await jobs.create(
        session, hub, job_id=run_id, tenant=tenant, kind=RUN_KIND, input={"run_id": run_id}
    )
    await jobs.append_event(
        session, hub, run_id, "run.created", {"run_id": run_id, "thread_id": thread_id}
    )
    return run_id


# -- approval, cancel, threads, usage ----------------------------------------------------------


async def decide(
    session: AsyncSession, hub: JobHub, tenant: Tenant, run_id: str, decision: str
) -> RunOut:
    run, _ = await load(session, tenant, run_id)
    if decision == "approved":
        won = await jobs.resume(session, hub, run_id, approved=True)
        if not won:
            raise Conflict(
                "This run is not awaiting approval", code="not_awaiting_approval", run_id=run_id
            )
        run.plan = None
        await session.flush()
        return await resource(session, tenant, run_id)
    won = await jobs.transition(session, hub, run_id, from_statuses=["parked"], to="cancelled")
    if not won:
        raise Conflict(
            "This run is not awaiting approval", code="not_awaiting_approval", run_id=run_id
        )
    await announce_end(session, hub, tenant, run_id)
    return await resource(session, tenant, run_id)


async def cancel(session: AsyncSession, hub: JobHub, tenant: Tenant, run_id: str) -> RunOut:
    """Cancel at once; a worker running the run stops at its next step. Work already done
    stays billed and what the answer says so far stays on the run."""
    await load(session, tenant, run_id)
    won = await jobs.transition(
        session,
        hub,
        run_id,
        from_statuses=["queued", "running", "parked"],
        to="cancelled",
        cancel_requested=True,
    )
    if not won:
        raise Conflict("This run has already finished", code="not_cancellable", run_id=run_id)
    await announce_end(session, hub, tenant, run_id)
    return await resource(session, tenant, run_id)


async def thread_runs(
    session: AsyncSession, tenant: Tenant, thread_id: str, limit: int, offset: int
) -> ThreadRuns:
    thread = await session.get(Thread, thread_id)
    if thread is None or (thread.org_id, thread.environment) != (
        tenant.org_id,
        tenant.environment.value,
    ):
        raise NotFound("Thread not found")
    ids = list(
        await session.scalars(
            select(Run.id)
            .where(Run.thread_id == thread_id)
            .order_by(Run.created_at.desc(), Run.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    total = await session.scalar(
        select(func.count()).select_from(Run).where(Run.thread_id == thread_id)
    )
    runs = [await resource(session, tenant, run_id) for run_id in ids]
    return ThreadRuns(
        thread_id=thread_id, runs=runs, limit=limit, offset=offset, total=int(total or 0)
    )


async def list_runs(session: AsyncSession, tenant: Tenant, limit: int, offset: int) -> RunList:
    mine = tenant.owns(Run)
    ids = list(
        await session.scalars(
            select(Run.id)
            .where(mine)
            .order_by(Run.created_at.desc(), Run.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    total = await session.scalar(select(func.count()).select_from(Run).where(mine))
    runs = [await resource(session, tenant, run_id) for run_id in ids]
    return RunList(runs=runs, limit=limit, offset=offset, total=int(total or 0))


async def usage(session: AsyncSession, principal: Principal) -> Usage:
    current = await billing.balance(session, principal.tenant, principal.plan)
    return Usage(
        credits_used=current.used,
        credits_remaining=current.remaining,
        max_credits=current.maximum,
    )


# -- the report as a PDF -----------------------------------------------------------------------


async def report_pdf(
    session: AsyncSession, data_dir: Path, run_id: str, expires: str, signature: str
) -> Path:
    """The PDF a signed report_url names: 404 for a run without a report, 403 for a link
    that is altered or expired. Made again from the stored report when its file is gone
    (another server's data folder, a cleared disk): the same report gives the same PDF."""
    run = (await session.execute(queries.REPORT_FOR_DOWNLOAD, {"run_id": run_id})).one_or_none()
    if run is None or run.report is None:
        raise NotFound("Run not found, or it has no report yet", run_id=run_id)
    if not links.is_valid(run.report_link, run.id, expires, signature):
        raise Forbidden("This report link is invalid or has expired: read the run for a new one")
    path = pdf_path(data_dir, run.org_id, run.id)
    if not path.is_file():
        content = await asyncio.to_thread(
            render_pdf, run.report, run_id=run.id, created_at=isoformat(run.created_at)
        )
        await asyncio.to_thread(write_pdf, path, content)
    return path


async def fresh_report_url(session: AsyncSession, payload: dict[str, Any]) -> dict[str, Any]:
    """A run event's payload with its report_url minted now (webhooks/refresh.py)."""
    data = payload.get("data")
    if not isinstance(data, dict) or not data.get("report_url") or not data.get("id"):
        return payload
    link = await session.scalar(select(Run.report_link).where(Run.id == data["id"]))
    return {**payload, "data": {**data, "report_url": links.report_url(link, data["id"])}}


register_refresher("run.", fresh_report_url)
