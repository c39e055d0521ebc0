"""Key management over HTTP (admin keys only) and the caller's own identity.

These live under `/api/auth/…` as in the entity-enrichment reference, so their errors use
that surface's body: `{"detail": "…"}`.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.tenancy import service
from openenrich.tenancy.dependencies import AdminPrincipal, CurrentPrincipal
from openenrich.tenancy.models import Organization
from openenrich.tenancy.schemas import ApiKeyList, ApiKeyOut, CreateApiKey, CreatedApiKey, WhoAmI

router = APIRouter(prefix="/api/auth", tags=["keys"], route_class=JSONRoute)


@router.get("/me", summary="The organisation, environment and role of the calling key")
async def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(
        organization=principal.org_name,
        environment=principal.tenant.environment,
        role=principal.role,
        key_prefix=principal.key_prefix,
        plan=principal.plan.name,
    )


@router.post("/api-keys", status_code=201, summary="Create a key (plaintext returned once)")
async def create_api_key(
    body: CreateApiKey, principal: AdminPrincipal, session: DbSession
) -> CreatedApiKey:
    org = await session.get(Organization, principal.tenant.org_id)
    assert org is not None  # the key that called us belongs to it
    key, plaintext = await service.create_key(
        session,
        org,
        environment=principal.tenant.environment,
        role=body.role,
        name=body.name,
        expires_in=timedelta(days=body.expires_in_days) if body.expires_in_days else None,
        auto_approve=body.auto_approve,
    )
    return CreatedApiKey(key=plaintext, **ApiKeyOut.model_validate(key).model_dump())


@router.get("/api-keys", summary="List this environment's keys")
async def list_api_keys(principal: AdminPrincipal, session: DbSession) -> ApiKeyList:
    keys = await service.list_keys(session, tenant=principal.tenant)
    return ApiKeyList(api_keys=[ApiKeyOut.model_validate(key) for key in keys])


@router.delete("/api-keys/{prefix}", summary="Revoke a key by its 16-character prefix")
async def revoke_api_key(prefix: str, principal: AdminPrincipal, session: DbSession) -> ApiKeyOut:
    key = await service.revoke_key(session, prefix, tenant=principal.tenant)
    return ApiKeyOut.model_validate(key)
