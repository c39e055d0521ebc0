"""HTTP for webhook endpoints (/api/v1/webhooks…), in the verification runs' error body."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from openenrich.errors import InvalidRequest
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.tenancy.dependencies import AdminPrincipal
from openenrich.webhooks import service
from openenrich.webhooks.schemas import (
    CreatedEndpoint,
    DeliveryOut,
    EndpointBody,
    EndpointDeleted,
    EndpointOut,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=JSONRoute)


def _allow_private(request: Request) -> bool:
    return app_state(request).settings.allow_private_urls


@router.post(
    "", status_code=201, summary="Register an endpoint (the signing secret is returned once)"
)
async def create(
    body: EndpointBody, request: Request, principal: AdminPrincipal, session: DbSession
) -> CreatedEndpoint:
    if not body.url:
        raise InvalidRequest("url: is required")
    endpoint = await service.create_endpoint(
        session,
        principal.tenant,
        url=body.url,
        event_types=body.event_types,
        description=body.description or "",
        allow_private=_allow_private(request),
    )
    return CreatedEndpoint.model_validate(endpoint)


@router.get("", summary="List endpoints")
async def list_endpoints(principal: AdminPrincipal, session: DbSession) -> list[EndpointOut]:
    endpoints = await service.list_endpoints(session, principal.tenant)
    return [EndpointOut.model_validate(endpoint) for endpoint in endpoints]


@router.get("/{endpoint_id}", summary="An endpoint")
async def get(endpoint_id: str, principal: AdminPrincipal, session: DbSession) -> EndpointOut:
    endpoint = await service.get_endpoint(session, principal.tenant, endpoint_id)
    return EndpointOut.model_validate(endpoint)


@router.patch("/{endpoint_id}", summary="Update an endpoint (is_active=true re-enables it)")
async def update(
    endpoint_id: str,
    body: EndpointBody,
    request: Request,
    principal: AdminPrincipal,
    session: DbSession,
) -> EndpointOut:
    endpoint = await service.update_endpoint(
        session,
        principal.tenant,
        endpoint_id,
        body.model_dump(exclude_unset=True),
        allow_private=_allow_private(request),
    )
    return EndpointOut.model_validate(endpoint)


@router.delete("/{endpoint_id}", summary="Remove an endpoint")
async def delete(
    endpoint_id: str, principal: AdminPrincipal, session: DbSession
) -> EndpointDeleted:
    await service.delete_endpoint(session, principal.tenant, endpoint_id)
    return EndpointDeleted(id=endpoint_id)


@router.get("/{endpoint_id}/deliveries", summary="Recent delivery attempts")
async def deliveries(
    endpoint_id: str,
    principal: AdminPrincipal,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[DeliveryOut]:
    found = await service.deliveries(session, principal.tenant, endpoint_id, limit)
    return [DeliveryOut.of(delivery) for delivery in found]
