"""HTTP for webhook endpoints (/api/v1/webhooks…), in the verification runs' error body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from openenrich.errors import InvalidRequest
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.ids import isoformat
from openenrich.tenancy.dependencies import AdminPrincipal
from openenrich.webhooks import service
from openenrich.webhooks.models import WebhookDelivery, WebhookEndpoint

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=JSONRoute)


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048)
    event_types: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    is_active: bool | None = None


def _out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "description": endpoint.description,
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": isoformat(endpoint.created_at),
        "updated_at": isoformat(endpoint.updated_at),
    }


def _delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": isoformat(delivery.next_attempt_at)
        if delivery.status == "pending"
        else None,
        "created_at": isoformat(delivery.created_at),
        "delivered_at": isoformat(delivery.delivered_at) if delivery.delivered_at else None,
    }


def _allow_private(request: Request) -> bool:
    return app_state(request).settings.allow_private_urls


@router.post(
    "", status_code=201, summary="Register an endpoint (the signing secret is returned once)"
)
async def create(
    body: EndpointBody, request: Request, principal: AdminPrincipal, session: DbSession
) -> JSONBody:
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
    return JSONBody({**_out(endpoint), "secret": endpoint.secret}, status_code=201)


@router.get("", summary="List endpoints")
async def list_endpoints(principal: AdminPrincipal, session: DbSession) -> JSONBody:
    return JSONBody([_out(e) for e in await service.list_endpoints(session, principal.tenant)])


@router.get("/{endpoint_id}", summary="An endpoint")
async def get(endpoint_id: str, principal: AdminPrincipal, session: DbSession) -> JSONBody:
    return JSONBody(_out(await service.get_endpoint(session, principal.tenant, endpoint_id)))


@router.patch("/{endpoint_id}", summary="Update an endpoint (is_active=true re-enables it)")
async def update(
    endpoint_id: str,
    body: EndpointBody,
    request: Request,
    principal: AdminPrincipal,
    session: DbSession,
) -> JSONBody:
    endpoint = await service.update_endpoint(
        session,
        principal.tenant,
        endpoint_id,
        body.model_dump(exclude_unset=True),
        allow_private=_allow_private(request),
    )
    return JSONBody(_out(endpoint))


@router.delete("/{endpoint_id}", summary="Remove an endpoint")
async def delete(endpoint_id: str, principal: AdminPrincipal, session: DbSession) -> JSONBody:
    await service.delete_endpoint(session, principal.tenant, endpoint_id)
    return JSONBody({"id": endpoint_id, "deleted": True})


@router.get("/{endpoint_id}/deliveries", summary="Recent delivery attempts")
async def deliveries(
    endpoint_id: str,
    principal: AdminPrincipal,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> JSONBody:
    found = await service.deliveries(session, principal.tenant, endpoint_id, limit)
    return JSONBody([_delivery(d) for d in found])
