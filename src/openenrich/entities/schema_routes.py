"""HTTP for saved schemas (/api/schema/saved…) and the schema jobs (generate from samples,
edit with a model). Errors: `{"detail": message}`.

Another tenant's schema, and an id that is not a UUID, are a 404 `Schema not found`;
`read` keys may only GET (403). The jobs answer `{"job_id"}` once everything that can be
checked before the work was (400s, 404s); follow them on /api/llm/stream/{job_id}.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from openenrich.entities import schema_jobs, schema_store
from openenrich.entities.access import Writer
from openenrich.entities.schema_bodies import (
    GenerateBody,
    PromptBody,
    SchemaBody,
    SchemaChanges,
    SchemaDeleted,
    SchemaList,
    SchemaOut,
    VersionList,
    VersionOut,
)
from openenrich.entities.schemas import JobStarted
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.jobs.runtime import JobsRuntime
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(prefix="/api/schema", tags=["entity schemas"], route_class=JSONRoute)


@router.get("/saved", summary="List saved schemas, most recently changed first")
async def list_schemas(principal: CurrentPrincipal, session: DbSession) -> SchemaList:
    return await schema_store.list_schemas(session, principal.tenant)


@router.post("/saved", status_code=201, summary="Save a schema (its version 1)")
async def create_schema(body: SchemaBody, principal: Writer, session: DbSession) -> SchemaOut:
    return await schema_store.create(session, principal.tenant, body)


@router.get("/saved/{schema_id}", summary="Get a schema (its newest version)")
async def get_schema(schema_id: str, principal: CurrentPrincipal, session: DbSession) -> SchemaOut:
    return await schema_store.get(session, principal.tenant, schema_id)


@router.put("/saved/{schema_id}", summary="Change a schema: a new version with the fields given")
async def update_schema(
    schema_id: str, body: SchemaChanges, principal: Writer, session: DbSession
) -> SchemaOut:
    return await schema_store.update_schema(session, principal.tenant, schema_id, body)


@router.delete("/saved/{schema_id}", summary="Delete a schema and its versions")
async def delete_schema(schema_id: str, principal: Writer, session: DbSession) -> SchemaDeleted:
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


@router.post(
    "/generate/stream",
    summary="Generate a schema from sample entities: a job to follow on /api/llm/stream/{job_id}",
)
async def generate(
    body: GenerateBody, request: Request, principal: Writer, session: DbSession
) -> JobStarted:
    state = app_state(request)
    job_id = await schema_jobs.start_generation(
        session, state.get(JobsRuntime).hub, state.get(Gateway), principal.tenant, body
    )
    return JobStarted(job_id=job_id)


@router.post(
    "/saved/{schema_id}/prompt/stream",
    summary="Edit a schema after an instruction: a job (a new version when the result is valid)",
)
async def prompt(
    schema_id: str, body: PromptBody, request: Request, principal: Writer, session: DbSession
) -> JobStarted:
    state = app_state(request)
    job_id = await schema_jobs.start_edit(
        session, state.get(JobsRuntime).hub, state.get(Gateway), principal.tenant, schema_id, body
    )
    return JobStarted(job_id=job_id)
