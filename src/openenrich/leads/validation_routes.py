"""HTTP for validation jobs (/v1/validation/…). Progress long-polls and the event stream
are the job facility's (`jobs.stream.Feeds`), shown through `validation.VALIDATION`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.responses import StreamingResponse

from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession, database
from openenrich.http.state import app_state
from openenrich.jobs.idempotency import idempotency
from openenrich.jobs.runtime import JobsRuntime
from openenrich.jobs.stream import EVENT_STREAM, ResumeAfter
from openenrich.leads import jobs, validation
from openenrich.leads.schemas import ValidationJob, ValidationProgress, ValidationStart
from openenrich.leads.validation import VALIDATION
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(prefix="/v1", tags=["validation"], route_class=JSONRoute)


def _runtime(request: Request) -> JobsRuntime:
    return app_state(request).get(JobsRuntime)


@router.post(
    "/validation/start",
    status_code=202,
    summary="Start a validation job",
    response_model=ValidationJob,
    responses={
        200: {
            "model": ValidationJob,
            "description": "The job an earlier request with this Idempotency-Key started",
        }
    },
)
async def start(
    body: ValidationStart,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONBody:
    key = idempotency(idempotency_key, body.model_dump(mode="json", exclude_unset=True))
    job, created = await validation.start(
        database(request), _runtime(request).hub, principal.tenant, body, key
    )
    return JSONBody(job, status_code=202 if created else 200)


@router.get("/validation/jobs/{job_id}", summary="Get a validation job's record")
async def get_job(job_id: str, request: Request, principal: CurrentPrincipal) -> ValidationJob:
    record = await jobs.read_record(database(request), VALIDATION, principal.tenant, job_id)
    assert isinstance(record, ValidationJob)
    return record


@router.get(
    "/validation/jobs/{job_id}/progress",
    summary="Poll a validation job's progress (long-poll with ?wait=seconds)",
    response_model=ValidationProgress,
)
async def progress(
    job_id: str,
    request: Request,
    principal: CurrentPrincipal,
    wait: Annotated[float, Query(ge=0, le=50)] = 0,
) -> JSONBody:
    feeds = _runtime(request).feeds
    return JSONBody(await feeds.long_poll(VALIDATION.view, principal.tenant, job_id, wait))


@router.post(
    "/validation/jobs/{job_id}/cancel",
    summary="Cancel a validation job",
    response_model=ValidationProgress,
)
async def cancel(
    job_id: str, request: Request, principal: CurrentPrincipal, session: DbSession
) -> JSONBody:
    hub = _runtime(request).hub
    return JSONBody(await jobs.cancel(session, hub, VALIDATION, principal.tenant, job_id))


@router.get(
    "/validation/jobs/{job_id}/events",
    summary="Server-Sent Events: the job's history, then live",
    response_class=StreamingResponse,
    responses={200: {"content": EVENT_STREAM}},
)
async def events(
    job_id: str, request: Request, principal: CurrentPrincipal, after: ResumeAfter
) -> Response:
    feeds = _runtime(request).feeds
    return await feeds.events(VALIDATION.view, principal.tenant, job_id, after)
