"""HTTP for enrichment jobs (/v1/enrichment/…). Progress long-polls and the event stream
are the job facility's (`jobs.stream.Feeds`), shown through `enrichment.ENRICHMENT`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import database
from openenrich.http.state import app_state
from openenrich.jobs.idempotency import idempotency
from openenrich.leads import enrichment
from openenrich.leads.enrichment import ENRICHMENT
from openenrich.leads.job_routes import add_job_routes, runtime
from openenrich.leads.request_limit import REQUEST_LIMIT
from openenrich.leads.schemas import EnrichmentJob, EnrichmentStart
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(
    prefix="/v1", tags=["enrichment"], route_class=JSONRoute, dependencies=REQUEST_LIMIT
)


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
        runtime(request).hub,
        app_state(request).get(Gateway),
        principal.tenant,
        body,
        key,
    )
    return JSONBody(job, status_code=202 if created else 200)


add_job_routes(router, ENRICHMENT, "an enrichment job")
