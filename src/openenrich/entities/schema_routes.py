"""HTTP for saved schemas (/api/schema/saved…). Errors: `{"detail": message}`.

Another tenant's schema, and an id that is not a UUID, are a 404 `Schema not found`;
`read` keys may only GET (403).
"""

from __future__ import annotations

from fastapi import APIRouter

from openenrich.entities import schema_store
from openenrich.entities.schema_bodies import (
    SchemaBody,
    SchemaChanges,
    SchemaDeleted,
    SchemaList,
    SchemaOut,
    VersionList,
    VersionOut,
)
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(prefix="/api/schema", tags=["entity schemas"], route_class=JSONRoute)


@router.get("/saved", summary="List saved schemas, most recently changed first")
async def list_schemas(principal: CurrentPrincipal, session: DbSession) -> SchemaList:
    return await schema_store.list_schemas(session, principal.tenant)


@router.post("/saved", status_code=201, summary="Save a schema (its version 1)")
async def create_schema(
    body: SchemaBody, principal: CurrentPrincipal, session: DbSession
) -> SchemaOut:
    return await schema_store.create(session, principal.tenant, body)


@router.get("/saved/{schema_id}", summary="Get a schema (its newest version)")
async def get_schema(schema_id: str, principal: CurrentPrincipal, session: DbSession) -> SchemaOut:
    return await schema_store.get(session, principal.tenant, schema_id)


@router.put("/saved/{schema_id}", summary="Change a schema: a new version with the fields given")
async def update_schema(
    schema_id: str, body: SchemaChanges, principal: CurrentPrincipal, session: DbSession
) -> SchemaOut:
    return await schema_store.update_schema(session, principal.tenant, schema_id, body)


@router.delete("/saved/{schema_id}", summary="Delete a schema and its versions")
async def delete_schema(
    schema_id: str, principal: CurrentPrincipal, session: DbSession
) -> SchemaDeleted:
    return await schema_store.delete_schema(session, principal.tenant, schema_id)


@router.get("/saved/{schema_id}/versions", summary="List a schema's versions, newest first")
async def list_versions(
    schema_id: str, principal: CurrentPrincipal, session: DbSession
) -> VersionList:
    return await schema_store.versions(session, principal.tenant, schema_id)


@router.get("/saved/{schema_id}/versions/{version}", summary="Get one version of a schema")
async def get_version(
    schema_id: str, version: str, principal: CurrentPrincipal, session: DbSession
) -> VersionOut:
    return await schema_store.version(session, principal.tenant, schema_id, version)
