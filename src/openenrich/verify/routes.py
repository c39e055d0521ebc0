"""HTTP for verification runs (/api/v1/…). Errors: `{"error": {"code", "message", "run_id"?}}`.

Long-polls, event streams and idempotent creation are the job facility's
(`jobs.stream`, `jobs.idempotency`), shown through `service.RUNS`. The routes that answer
with one run write it with `JSONBody`, which hands its payloads (metadata, report, plan) to
orjson as they are (`json_output.json_values`); each declares `RunOut` for /openapi.json.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.responses import FileResponse, StreamingResponse

from openenrich.config import Settings
from openenrich.errors import InvalidRequest
from openenrich.http.params import INT64_MAX
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession, database
from openenrich.http.state import app_state
from openenrich.jobs.idempotency import idempotency
from openenrich.jobs.notify import JobHub
from openenrich.jobs.runtime import JobsRuntime
from openenrich.jobs.stream import EVENT_STREAM, Feeds, ResumeAfter
from openenrich.tenancy.dependencies import AdminPrincipal, authenticated
from openenrich.tenancy.ratelimit import RateLimiter
from openenrich.tenancy.tenant import Principal
from openenrich.verify import service
from openenrich.verify.schemas import (
    CreateRun,
    Decision,
    RunList,
    RunOut,
    ThreadRuns,
    Usage,
    WorkflowBody,
    WorkflowDetail,
    WorkflowOut,
)

router = APIRouter(prefix="/api/v1", tags=["verification runs"], route_class=JSONRoute)


def hub_of(request: Request) -> JobHub:
    return app_state(request).get(JobsRuntime).hub


def feeds_of(request: Request) -> Feeds:
    return app_state(request).get(JobsRuntime).feeds


def settings_of(request: Request) -> Settings:
    return app_state(request).settings


def limits_of(request: Request) -> service.Limits:
    state = app_state(request)
    settings = state.settings
    return service.Limits(
        state.get(RateLimiter), settings.runs_create_per_minute, settings.runs_max_active
    )


async def verify_principal(request: Request) -> Principal:
    """A key, plus the reference's read limit (600 GETs a minute per key)."""
    principal = await authenticated(request)
    if request.method == "GET":
        bucket = f"runs-read:{principal.key_id}"
        per_minute = settings_of(request).runs_reads_per_minute
        await service.limit(app_state(request).get(RateLimiter), bucket, per_minute)
    return principal


Caller = Annotated[Principal, Depends(verify_principal)]


# -- runs ----------------------------------------------------------------------------------


@router.post(
    "/runs",
    status_code=202,
    summary="Create a run",
    response_model=RunOut,
    responses={
        200: {
            "model": RunOut,
            "description": "The run an earlier request with this Idempotency-Key created; "
            "with `stream: true`, the run's event stream",
            "content": EVENT_STREAM,
        }
    },
)
async def create_run(
    body: CreateRun,
    request: Request,
    principal: Caller,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    # `stream` shapes the answer, not the run: a retry may ask for either.
    key = idempotency(idempotency_key, body.model_dump(exclude_unset=True, exclude={"stream"}))
    new = service.NewRun(body.message, body.workflow, body.thread_id, body.metadata)
    created = await service.create_or_replay(
        database(request), hub_of(request), principal, new, key, limits_of(request)
    )
    return feeds_of(request).answer(service.RUNS, created, stream=body.stream)


@router.get(
    "/runs/{run_id}",
    summary="Retrieve a run (long-poll with ?wait=seconds)",
    response_model=RunOut,
)
async def get_run(
    run_id: str,
    request: Request,
    principal: Caller,
    wait: Annotated[float, Query(ge=0, le=50)] = 0,
) -> JSONBody:
    feeds = feeds_of(request)
    return JSONBody(await feeds.long_poll(service.RUNS, principal.tenant, run_id, wait))


@router.get(
    "/runs/{run_id}/events",
    summary="Server-Sent Events: the run's history, then live",
    response_class=StreamingResponse,
    responses={200: {"content": EVENT_STREAM}},
)
async def run_events(
    run_id: str, request: Request, principal: Caller, after: ResumeAfter
) -> Response:
    return await feeds_of(request).events(service.RUNS, principal.tenant, run_id, after)


@router.get(
    "/runs/{run_id}/report.pdf",
    summary="The run's report as a PDF (the signed link report_url gives; no key needed)",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The report as a PDF",
        }
    },
)
async def report_pdf(
    run_id: str,
    request: Request,
    session: DbSession,
    expires: Annotated[str, Query(max_length=20)] = "",
    signature: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    path = await service.report_pdf(
        session, settings_of(request).data_dir, run_id, expires, signature
    )
    return FileResponse(
        path,
        media_type="application/pdf",
        filename=f"{run_id}.pdf",
        headers={"Cache-Control": "private, no-store"},
    )


@router.post(
    "/runs/{run_id}/approval", summary="Approve or decline a run's plan", response_model=RunOut
)
async def approval(
    run_id: str, body: Decision, request: Request, principal: Caller, session: DbSession
) -> JSONBody:
    return JSONBody(
        await service.decide(session, hub_of(request), principal.tenant, run_id, body.decision)
    )


@router.post("/runs/{run_id}/cancel", summary="Cancel a run", response_model=RunOut)
async def cancel(run_id: str, request: Request, principal: Caller, session: DbSession) -> JSONBody:
    return JSONBody(await service.cancel(session, hub_of(request), principal.tenant, run_id))


@router.get("/runs", summary="Your runs, newest first")
async def list_runs(
    principal: Caller,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> RunList:
    return await service.list_runs(session, principal.tenant, limit, offset)


@router.get("/threads/{thread_id}/runs", summary="A thread's runs, newest first")
async def thread_runs(
    thread_id: str,
    principal: Caller,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> ThreadRuns:
    return await service.thread_runs(session, principal.tenant, thread_id, limit, offset)


# -- workflows and usage --------------------------------------------------------------------


@router.get("/workflows", summary="Built-in workflows and your organisation's own")
async def list_workflows(principal: Caller, session: DbSession) -> list[WorkflowOut]:
    return await service.list_workflows(session, principal.tenant)


@router.get("/workflows/{slug}", summary="One workflow, with its Markdown")
async def get_workflow(slug: str, principal: Caller, session: DbSession) -> WorkflowDetail:
    return await service.workflow(session, principal.tenant, slug)


@router.post("/workflows", status_code=201, summary="Create a workflow (admin)")
async def create_workflow(
    body: WorkflowBody, principal: AdminPrincipal, session: DbSession
) -> WorkflowOut:
    if not body.slug:
        raise InvalidRequest("slug: is required (lowercase letters, digits and '-')")
    if not body.content:
        raise InvalidRequest("content: is required (Markdown naming the checks to run)")
    changes = body.model_dump(exclude_unset=True, exclude={"slug"})
    return await service.save_workflow(session, principal.tenant, body.slug, changes, create=True)


@router.patch(
    "/workflows/{slug}", summary="Update or (is_active=false) deactivate a workflow (admin)"
)
async def update_workflow(
    slug: str, body: WorkflowBody, principal: AdminPrincipal, session: DbSession
) -> WorkflowOut:
    changes = body.model_dump(exclude_unset=True, exclude={"slug"})
    return await service.save_workflow(session, principal.tenant, slug, changes, create=False)


@router.delete("/workflows/{slug}", summary="Deactivate a workflow (admin)")
async def deactivate_workflow(
    slug: str, principal: AdminPrincipal, session: DbSession
) -> WorkflowOut:
    return await service.save_workflow(
        session, principal.tenant, slug, {"is_active": False}, create=False
    )


@router.get("/usage", summary="Credits used and remaining")
async def usage(principal: Caller, session: DbSession) -> Usage:
    return await service.usage(session, principal)
