"""HTTP for columns and templates (/v1/pipelines/:id/columns, /v1/columns/…)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from openenrich.http.params import INT64_MAX
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.leads import columns, templates
from openenrich.leads.request_limit import REQUEST_LIMIT
from openenrich.leads.schemas import (
    AiTemplateBody,
    AiTemplateList,
    AiTemplateOut,
    ColumnBody,
    ColumnList,
    ColumnOut,
    FirecrawlTemplateBody,
    FirecrawlTemplateList,
    FirecrawlTemplateOut,
    MultiAiTemplateBody,
    MultiAiTemplateList,
    MultiAiTemplateOut,
)
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(
    prefix="/v1", tags=["columns"], route_class=JSONRoute, dependencies=REQUEST_LIMIT
)

# Clamped to [1, 10000] like the leads listing; anything within int64 is accepted.
Limit = Annotated[int, Query(ge=-INT64_MAX, le=INT64_MAX)]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]


def _gateway(request: Request) -> Gateway:
    return app_state(request).get(Gateway)


@router.post(
    "/pipelines/{pipeline_id}/columns",
    status_code=201,
    summary="Add a column (base, ai, multi_ai, firecrawl)",
    response_model=ColumnOut,
    responses={200: {"model": ColumnOut, "description": "The pipeline already had it"}},
)
async def add_column(
    pipeline_id: str,
    body: ColumnBody,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
) -> JSONBody:
    column, created = await columns.add(
        session, _gateway(request), principal.tenant, pipeline_id, body
    )
    return JSONBody(column, status_code=201 if created else 200)


@router.get("/pipelines/{pipeline_id}/columns", summary="List a pipeline's columns")
async def list_columns(
    pipeline_id: str, principal: CurrentPrincipal, session: DbSession
) -> ColumnList:
    return ColumnList(data=await columns.listed(session, principal.tenant, pipeline_id))


@router.get("/columns/ai-templates", summary="List AI templates, newest first")
async def list_ai_templates(
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> AiTemplateList:
    return await templates.list_ai(session, _gateway(request), principal.tenant, limit, offset)


@router.post("/columns/ai-templates", status_code=201, summary="Create an AI template")
async def create_ai_template(
    body: AiTemplateBody, request: Request, principal: CurrentPrincipal, session: DbSession
) -> AiTemplateOut:
    return await templates.save_ai(session, _gateway(request), principal.tenant, body)


@router.get("/columns/multi-ai-templates", summary="List multi-AI templates, newest first")
async def list_multi_ai_templates(
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> MultiAiTemplateList:
    return await templates.list_multi_ai(
        session, _gateway(request), principal.tenant, limit, offset
    )


@router.post("/columns/multi-ai-templates", status_code=201, summary="Create a multi-AI template")
async def create_multi_ai_template(
    body: MultiAiTemplateBody, request: Request, principal: CurrentPrincipal, session: DbSession
) -> MultiAiTemplateOut:
    return await templates.save_multi_ai(session, _gateway(request), principal.tenant, body)


@router.get("/columns/firecrawl-templates", summary="List Firecrawl templates, newest first")
async def list_firecrawl_templates(
    principal: CurrentPrincipal,
    session: DbSession,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> FirecrawlTemplateList:
    return await templates.list_firecrawl(session, principal.tenant, limit, offset)


@router.post("/columns/firecrawl-templates", status_code=201, summary="Create a Firecrawl template")
async def create_firecrawl_template(
    body: FirecrawlTemplateBody, principal: CurrentPrincipal, session: DbSession
) -> FirecrawlTemplateOut:
    return await templates.save_firecrawl(session, principal.tenant, body)
