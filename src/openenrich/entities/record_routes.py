"""`/api/records…`: the records enrichment and fusion made."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from openenrich.entities import records
from openenrich.entities.access import Writer
from openenrich.entities.schemas import BatchDelete, BatchDeleted, RecordList, RecordOut
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(prefix="/api/records", tags=["entity records"], route_class=JSONRoute)


@router.get("", summary="List records, newest first", response_model=RecordList)
async def list_records(
    principal: CurrentPrincipal,
    session: DbSession,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    type: Literal["enrichment", "fusion"] | None = None,
    schema_id: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the entity's name")] = None,
) -> JSONBody:
    filters = records.Filters(type, schema_id, model, date_from, date_to, q)
    return JSONBody(await records.page(session, principal.tenant, filters, page, page_size))


@router.get("/{record_id}", summary="A record with its structured output", response_model=RecordOut)
async def get_record(record_id: str, principal: CurrentPrincipal, session: DbSession) -> JSONBody:
    return JSONBody(await records.get(session, principal.tenant, record_id))


@router.post(
    "/batch-delete",
    summary="Delete up to 100 records (ids not the organisation's are skipped)",
    response_model=BatchDeleted,
)
async def batch_delete(body: BatchDelete, principal: Writer, session: DbSession) -> JSONBody:
    deleted = await records.delete_many(session, principal.tenant, body.ids)
    return JSONBody(BatchDeleted(deleted=deleted))
