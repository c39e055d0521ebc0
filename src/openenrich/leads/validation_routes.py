"""HTTP for validation jobs (/v1/validation/…). Progress long-polls and the event stream
are the job facility's (`jobs.stream.Feeds`), shown through `validation.VALIDATION`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import database
from openenrich.jobs.idempotency import idempotency
from openenrich.leads import validation
from openenrich.leads.job_routes import add_job_routes, runtime
from openenrich.leads.request_limit import REQUEST_LIMIT
from openenrich.leads.schemas import ValidationJob, ValidationStart
from openenrich.leads.validation import VALIDATION
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(
    prefix="/v1", tags=["validation"], route_class=JSONRoute, dependencies=REQUEST_LIMIT
)


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
        database(request), runtime(request).hub, principal.tenant, body, key
    )
    return JSONBody(job, status_code=202 if created else 200)


add_job_routes(router, VALIDATION, "a validation job")
