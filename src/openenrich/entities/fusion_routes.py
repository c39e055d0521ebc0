"""HTTP for fusion on demand (/api/fusion/merge). Synchronous for now: the answer is the
fused record. When entity jobs stream over /api/llm/stream/{job_id}, a merge with an
arbiter may become such a job (kind "fusion"), calling the same `merge` functions."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openenrich.entities import merge as merging
from openenrich.entities.access import Writer
from openenrich.entities.schemas import FusedRecord, MergeBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession, database
from openenrich.http.state import app_state
from openenrich.llm.gateway import Gateway

router = APIRouter(tags=["entity enrichment"], route_class=JSONRoute)


@router.post(
    "/api/fusion/merge",
    summary="Merge the results of several models for one entity into one fused record",
)
async def merge(
    body: MergeBody, request: Request, principal: Writer, session: DbSession
) -> FusedRecord:
    tenant = principal.tenant
    found = await merging.sources(database(request), tenant, body.record_ids)
    gateway = app_state(request).get(Gateway)
    record, fused = await merging.merge(session, gateway, tenant, found, body.arbitration_model)
    columns = {name: getattr(record, name, None) for name in FusedRecord.model_fields}
    return FusedRecord.model_validate(
        {**columns, "valid": fused.valid, "validation_errors": fused.problems}
    )
