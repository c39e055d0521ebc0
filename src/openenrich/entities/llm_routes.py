"""`/api/llm/…`: follow, cancel and continue any job of this surface (enrichment, schema
generation and editing, fusion). Streams and long-polls are the job facility's
(`jobs.stream.Feeds`), shown through `entities.jobs.VIEW`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.responses import StreamingResponse

from openenrich.entities import jobs
from openenrich.entities.access import Writer
from openenrich.entities.schemas import JobOut
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.jobs.runtime import JobsRuntime
from openenrich.jobs.stream import EVENT_STREAM, ResumeAfter
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(prefix="/api/llm", tags=["entity jobs"], route_class=JSONRoute)


def runtime(request: Request) -> JobsRuntime:
    return app_state(request).get(JobsRuntime)


@router.get(
    "/stream/{job_id}",
    summary="Server-Sent Events of a job: its history, then live, until `completed`",
    response_class=StreamingResponse,
    responses={200: {"content": EVENT_STREAM}},
)
async def stream(
    job_id: str, request: Request, principal: CurrentPrincipal, after: ResumeAfter
) -> Response:
    return await runtime(request).feeds.events(jobs.VIEW, principal.tenant, job_id, after)


@router.get(
    "/jobs/{job_id}",
    summary="A job (long-poll with ?wait=seconds: answers once its status changes)",
    response_model=JobOut,
)
async def get_job(
    job_id: str,
    request: Request,
    principal: CurrentPrincipal,
    wait: Annotated[float, Query(ge=0, le=50)] = 0,
) -> JSONBody:
    feeds = runtime(request).feeds
    return JSONBody(await feeds.long_poll(jobs.VIEW, principal.tenant, job_id, wait))


@router.post(
    "/cancel/{job_id}",
    summary="Cancel a queued, running or paused job (a finished one is left as it is)",
    response_model=JobOut,
)
async def cancel(job_id: str, request: Request, principal: Writer, session: DbSession) -> JSONBody:
    return JSONBody(await jobs.cancel(session, runtime(request).hub, principal.tenant, job_id))


@router.post(
    "/continue/{job_id}",
    summary="Resume a paused job (e.g. after a classification mismatch)",
    response_model=JobOut,
    responses={409: {"description": "The job is not paused"}},
)
async def continue_job(
    job_id: str, request: Request, principal: Writer, session: DbSession
) -> JSONBody:
    return JSONBody(await jobs.resume(session, runtime(request).hub, principal.tenant, job_id))
