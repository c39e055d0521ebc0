"""HTTP for the reference's Pipelines and Leads parts (/v1/pipelines…). Errors:
`{"error": message}`, plus `current_count` and `quota_limit` on a 402."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from openenrich.errors import BadRequest, InvalidRequest
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession, database
from openenrich.http.state import app_state
from openenrich.leads import listing, pipelines, uploads
from openenrich.leads.request_limit import REQUEST_LIMIT
from openenrich.leads.schemas import (
    LeadIn,
    LeadPage,
    PipelineBody,
    PipelineList,
    PipelineOut,
    UploadOut,
)
from openenrich.leads.upload_slots import UploadSlots, upload_slot
from openenrich.tenancy.dependencies import CurrentPrincipal
from openenrich.tenancy.tenant import Principal

router = APIRouter(
    prefix="/v1", tags=["pipelines and leads"], route_class=JSONRoute, dependencies=REQUEST_LIMIT
)


# -- pipelines -----------------------------------------------------------------------------


@router.post("/pipelines", status_code=201, summary="Create a pipeline")
async def create_pipeline(
    body: PipelineBody, principal: CurrentPrincipal, session: DbSession
) -> PipelineOut:
    return await pipelines.create(session, principal.tenant, body)


@router.get("/pipelines", summary="List your pipelines (with stats), newest first")
async def list_pipelines(
    principal: CurrentPrincipal,
    session: DbSession,
    limit: int | None = None,
    offset: int | None = None,
) -> PipelineList:
    return await pipelines.list_pipelines(session, principal.tenant, limit, offset)


@router.get("/pipelines/{pipeline_id}", summary="Get one pipeline")
async def get_pipeline(
    pipeline_id: str, principal: CurrentPrincipal, session: DbSession
) -> PipelineOut:
    return await pipelines.get(session, principal.tenant, pipeline_id)


# -- leads ---------------------------------------------------------------------------------


async def uploader(request: Request, principal: CurrentPrincipal) -> AsyncIterator[Principal]:
    """The caller, holding one of its account's upload slots (429 when all are taken)
    from before the body is read until the answer is ready."""
    async with upload_slot(app_state(request).get(UploadSlots), principal.tenant):
        yield principal


# scope="function": the slot is given back before the answer goes out (after the commit,
# which DbSession, declared after it, makes first), so a client that sends its next batch
# on the answer never meets its own finished upload.
Uploader = Annotated[Principal, Depends(uploader, scope="function")]

# The body is read by the route (after the slot is taken), so FastAPI does not describe
# it: this does.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": LeadIn.model_json_schema(),
                    "description": "Only email is required; at most 25,000 leads, 4 MiB (defaults)",
                }
            }
        },
    }
}


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError as error:
        reason = f": {error.msg}" if error.msg else ""
        raise InvalidRequest(f"Request body is not valid JSON{reason}") from None


@router.post(
    "/pipelines/{pipeline_id}/leads",
    status_code=202,
    summary="Upload leads (a JSON array)",
    response_model=UploadOut,
    openapi_extra=_UPLOAD_BODY,
)
async def upload_leads(
    pipeline_id: str, request: Request, principal: Uploader, session: DbSession
) -> JSONBody:
    rows = await json_body(request)
    max_rows = app_state(request).settings.lead_upload_max_rows
    answer = await uploads.upload(session, principal, pipeline_id, rows, max_rows=max_rows)
    return JSONBody(answer, status_code=202)


_EXPORTS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@router.get(
    "/pipelines/{pipeline_id}/leads",
    summary="List leads (paginated), or export them all (format=ndjson|csv)",
    response_model=LeadPage,
    responses={
        200: {
            "description": "A page of leads; with `format=ndjson` or `csv`, every lead of "
            "the pipeline, streamed",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "One listing row per line"}
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def list_leads(
    pipeline_id: str,
    request: Request,
    principal: CurrentPrincipal,
    limit: int | None = None,
    offset: int | None = None,
    after: str | None = None,
    format: Literal["json", "ndjson", "csv"] = "json",
) -> Response:
    db = database(request)
    if format == "json":
        seconds = app_state(request).settings.leads_offset_snapshot_seconds
        body = await listing.page(
            db, principal, pipeline_id, limit, offset, after, snapshot_seconds=seconds
        )
        return Response(body, media_type="application/json")
    if limit is not None or offset is not None:
        raise BadRequest(f"format={format} streams the whole pipeline: no limit or offset")
    lines = await listing.export(db, principal.tenant, pipeline_id, format, after)
    filename = f"pipeline-{pipeline_id.lower()}.{format}"
    return StreamingResponse(
        lines,
        media_type=_EXPORTS[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
