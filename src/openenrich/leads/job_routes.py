"""The routes that follow a lead job, the same for every family: the record, progress
(long-poll), cancel and the event stream. Each family's routes module adds them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.responses import StreamingResponse

from openenrich.http.responses import JSONBody
from openenrich.http.session import DbSession, database
from openenrich.http.state import app_state
from openenrich.jobs.runtime import JobsRuntime
from openenrich.jobs.stream import EVENT_STREAM, ResumeAfter
from openenrich.leads import jobs
from openenrich.tenancy.dependencies import CurrentPrincipal


def runtime(request: Request) -> JobsRuntime:
    return app_state(request).get(JobsRuntime)


def add_job_routes(router: APIRouter, family: jobs.Family, label: str) -> None:
    """`/<family>/jobs/{job_id}` and its progress, cancel and events; `label` is "an
    enrichment job" or "a validation job", for the summaries."""
    base = f"/{family.name}/jobs/{{job_id}}"

    @router.get(base, summary=f"Get {label}'s record", response_model=family.record)
    async def get_job(job_id: str, request: Request, principal: CurrentPrincipal) -> JSONBody:
        return JSONBody(await jobs.read_record(database(request), family, principal.tenant, job_id))

    @router.get(
        f"{base}/progress",
        summary=f"Poll {label}'s progress (long-poll with ?wait=seconds)",
        response_model=family.progress,
    )
    async def progress(
        job_id: str,
        request: Request,
        principal: CurrentPrincipal,
        wait: Annotated[float, Query(ge=0, le=50)] = 0,
    ) -> JSONBody:
        feeds = runtime(request).feeds
        return JSONBody(await feeds.long_poll(family.view, principal.tenant, job_id, wait))

    @router.post(f"{base}/cancel", summary=f"Cancel {label}", response_model=family.progress)
    async def cancel(
        job_id: str, request: Request, principal: CurrentPrincipal, session: DbSession
    ) -> JSONBody:
        hub = runtime(request).hub
        return JSONBody(await jobs.cancel(session, hub, family, principal.tenant, job_id))

    @router.get(
        f"{base}/events",
        summary="Server-Sent Events: the job's history, then live",
        response_class=StreamingResponse,
        responses={200: {"content": EVENT_STREAM}},
    )
    async def events(
        job_id: str, request: Request, principal: CurrentPrincipal, after: ResumeAfter
    ) -> Response:
        return await runtime(request).feeds.events(family.view, principal.tenant, job_id, after)
