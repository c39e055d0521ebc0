"""HTTP for enrichment jobs (/v1/enrichment/…). Progress long-polls and the event stream
are the job facility's (`jobs.stream.Feeds`), shown through `enrichment.ENRICHMENT`."""

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
from openenrich.leads import enrichment, jobs
from openenrich.leads.enrichment import ENRICHMENT
from openenrich.leads.schemas import EnrichmentJob, EnrichmentProgress, EnrichmentStart
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(prefix="/v1", tags=["enrichment"], route_class=JSONRoute)


def _runtime(request: Request) -> JobsRuntime:
    return app_state(request).get(JobsRuntime)


@router.post(
    "/enrichment/start",
    status_code=202,
    summary="Start an enrichment job",
    response_model=EnrichmentJob,
    responses={
        200: {
            "model": EnrichmentJob,
            "description": "The job an earlier request with this Idempotency-Key started",
        }
    },
)
async def start(
    body: EnrichmentStart,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONBody:
    key = idempotency(idempotency_key, body.model_dump(mode="json", exclude_unset=True))
    job, created = await enrichment.start(
        database(request),
        _runtime(request).hub,
        app_state(request).get(Gateway),
        principal.tenant,
        body,
        key,
    )
    return JSONBody(job, status_code=202 if created else 200)


@router.get("/enrichment/jobs/{job_id}", summary="Get an enrichment job's record")
async def get_job(job_id: str, request: Request, principal: CurrentPrincipal) -> EnrichmentJob:
    record = await jobs.read_record(database(request), ENRICHMENT, principal.tenant, job_id)
    assert isinstance(record, EnrichmentJob)
    return record


@router.get(
    "/enrichment/jobs/{job_id}/progress",
    summary="Poll an enrichment job's progress (long-poll with ?wait=seconds)",
    response_model=EnrichmentProgress,
)
async def progress(
    job_id: str,
    request: Request,
    principal: CurrentPrincipal,
    wait: Annotated[float, Query(ge=0, le=50)] = 0,
) -> JSONBody:
    feeds = _runtime(request).feeds
    return JSONBody(await feeds.long_poll(ENRICHMENT.view, principal.tenant, job_id, wait))


@router.post(
    "/enrichment/jobs/{job_id}/cancel",
    summary="Cancel an enrichment job",
    response_model=EnrichmentProgress,
)
async def cancel(
    job_id: str, request: Request, principal: CurrentPrincipal, session: DbSession
) -> JSONBody:
    hub = _runtime(request).hub
    return JSONBody(await jobs.cancel(session, hub, ENRICHMENT, principal.tenant, job_id))


@router.get(
    "/enrichment/jobs/{job_id}/events",
    summary="Server-Sent Events: the job's history, then live",
    response_class=StreamingResponse,
    responses={200: {"content": EVENT_STREAM}},
)
async def events(
    job_id: str, request: Request, principal: CurrentPrincipal, after: ResumeAfter
) -> Response:
    feeds = _runtime(request).feeds
    return await feeds.events(ENRICHMENT.view, principal.tenant, job_id, after)
