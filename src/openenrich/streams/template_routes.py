"""HTTP for enrichment templates: `GET /templates` (built-in and the tenant's own), and
admins' `POST/PUT/DELETE /templates/:id`. Errors: `{"error": "…"}`."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openenrich.enrichers.registry import EnricherEnv
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.streams import templates
from openenrich.streams.runtime import Streams
from openenrich.streams.schemas import TemplateBody, TemplateDeleted, TemplateList, TemplateOut
from openenrich.tenancy.dependencies import AdminPrincipal, CurrentPrincipal

router = APIRouter(tags=["streams"], route_class=JSONRoute)


def _env(request: Request) -> EnricherEnv:
    return app_state(request).get(Streams).processing.env


@router.get("/templates", summary="Enrichment templates: built-in and your own")
async def list_templates(
    request: Request, principal: CurrentPrincipal, session: DbSession
) -> TemplateList:
    views = await templates.list_templates(session, principal.tenant, _env(request))
    return TemplateList(templates=[TemplateOut.model_validate(view) for view in views])


@router.get("/templates/{template_id}", summary="One enrichment template")
async def get_template(
    template_id: str, request: Request, principal: CurrentPrincipal, session: DbSession
) -> TemplateOut:
    view = await templates.get_template(session, principal.tenant, template_id, _env(request))
    return TemplateOut.model_validate(view)


@router.post("/templates", status_code=201, summary="Define a template (admin)")
async def create_template(
    body: TemplateBody, request: Request, principal: AdminPrincipal, session: DbSession
) -> TemplateOut:
    view = await templates.create_template(
        session, principal.tenant, body.model_dump(exclude_unset=True), _env(request)
    )
    return TemplateOut.model_validate(view)


@router.put("/templates/{template_id}", summary="Change your template (admin)")
async def update_template(
    template_id: str,
    body: TemplateBody,
    request: Request,
    principal: AdminPrincipal,
    session: DbSession,
) -> TemplateOut:
    view = await templates.update_template(
        session, principal.tenant, template_id, body.model_dump(exclude_unset=True), _env(request)
    )
    return TemplateOut.model_validate(view)


@router.delete("/templates/{template_id}", summary="Delete your template (admin)")
async def delete_template(
    template_id: str, principal: AdminPrincipal, session: DbSession
) -> TemplateDeleted:
    await templates.delete_template(session, principal.tenant, template_id)
    return TemplateDeleted(id=template_id)
