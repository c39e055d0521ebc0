"""`/api/single/enrich/stream`, `/api/enrichment/batch/start`, `/api/enrichment/batch/fetch`:
start enrichment jobs (answered with their `job_id`, 200, as the reference's client reads
it), and load entities from a URL. Follow a job with `/api/llm/stream/{job_id}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openenrich.entities import enrichment, sources
from openenrich.entities.access import Writer
from openenrich.entities.enrichment import Plan
from openenrich.entities.schemas import (
    BatchEnrichment,
    BatchFetch,
    BatchStarted,
    EnrichmentOptions,
    FetchedEntities,
    JobStarted,
    SingleEnrichment,
)
from openenrich.errors import BadRequest
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import database
from openenrich.http.state import app_state
from openenrich.jobs.runtime import JobsRuntime
from openenrich.llm.gateway import Gateway
from openenrich.llm.routes import LANGUAGES
from openenrich.tenancy.tenant import Principal
from openenrich.web.fetch import Fetcher

router = APIRouter(prefix="/api", tags=["entity enrichment"], route_class=JSONRoute)

_LANGUAGE_CODES = [language["code"] for language in LANGUAGES]


async def _plan(request: Request, principal: Principal, options: EnrichmentOptions) -> Plan:
    state = app_state(request)
    return await enrichment.plan(
        database(request), state.get(Gateway), principal.tenant, options, _LANGUAGE_CODES
    )


async def _start(
    request: Request,
    principal: Principal,
    options: EnrichmentOptions,
    entities: list[dict[str, Any]],
) -> str:
    planned = await _plan(request, principal, options)
    return await _start_planned(request, principal, planned, entities)


async def _start_planned(
    request: Request, principal: Principal, planned: Plan, entities: list[dict[str, Any]]
) -> str:
    state = app_state(request)
    return await enrichment.start(
        database(request),
        state.get(JobsRuntime).hub,
        state.settings,
        principal.tenant,
        planned,
        entities,
    )


@router.post(
    "/single/enrich/stream",
    summary="Enrich one entity: a job to follow on /api/llm/stream/{job_id}",
    response_model=JobStarted,
)
async def enrich_single(body: SingleEnrichment, request: Request, principal: Writer) -> JSONBody:
    job_id = await _start(request, principal, body, [body.entity_data])
    return JSONBody(JobStarted(job_id=job_id))


@router.post(
    "/enrichment/batch/start",
    summary="Enrich many entities in one job",
    response_model=BatchStarted,
)
async def batch_start(body: BatchEnrichment, request: Request, principal: Writer) -> JSONBody:
    job_id = await _start(request, principal, body, body.entities)
    return JSONBody(BatchStarted(job_id=job_id, count=len(body.entities)))


@router.post(
    "/enrichment/batch/fetch",
    summary="Load entities from a URL (CSV, JSON, NDJSON); with start=true, enrich them",
    response_model=FetchedEntities | BatchStarted,
)
async def batch_fetch(body: BatchFetch, request: Request, principal: Writer) -> JSONBody:
    state = app_state(request)
    planned = None
    if body.start:  # checked before the fetch: a request that cannot start fetches nothing
        if body.schema_id is None or not body.models:
            raise BadRequest("schema_id and models are required to start a batch")
        options = EnrichmentOptions.model_validate(
            body.model_dump(include=set(EnrichmentOptions.model_fields))
        )
        planned = await _plan(request, principal, options)
    entities = await sources.fetch_entities(
        state.get(Fetcher), body.url, body.format, state.settings.entities_batch_max
    )
    if planned is None:
        return JSONBody(FetchedEntities(entities=entities, count=len(entities)))
    job_id = await _start_planned(request, principal, planned, entities)
    return JSONBody(BatchStarted(job_id=job_id, count=len(entities)))
