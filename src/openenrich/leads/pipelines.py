"""Pipelines: create, list, read. Their stats are the counter columns, which the writes
that change them keep up to date in their own transaction: a pipeline of a million leads
costs one row to show."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.errors import BadRequest, NotFound
from openenrich.ids import new_uuid, parse_uuid, utcnow
from openenrich.leads.models import Pipeline
from openenrich.leads.schemas import Pagination, PipelineBody, PipelineList, PipelineOut
from openenrich.tenancy.tenant import Tenant

# Page sizes, as for a pipeline's leads (the reference is silent on listing pipelines).
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


# The stats columns, as the answers name them.
COUNTERS = (
    "total_leads",
    "imported_leads",
    "validated_leads",
    "enriched_leads",
    "valid_emails",
    "invalid_emails",
    "risky_emails",
    "unknown_emails",
)


def not_found() -> NotFound:
    return NotFound("Pipeline not found")


def render(pipeline: Pipeline) -> PipelineOut:
    return PipelineOut.model_validate(
        {
            "pipeline_id": pipeline.id,
            "pipeline_name": pipeline.name,
            "pipeline_description": pipeline.description,
            "pipeline_color": pipeline.color,
            "pipeline_created_at": pipeline.created_at,
            "pipeline_updated_at": pipeline.updated_at,
            "total_leads": pipeline.total_leads,
            "imported_leads": pipeline.imported_leads,
            "validated_leads": pipeline.validated_leads,
            "enriched_leads": pipeline.enriched_leads,
            "valid_emails": pipeline.valid_emails,
            "invalid_emails": pipeline.invalid_emails,
            "risky_emails": pipeline.risky_emails,
            "unknown_emails": pipeline.unknown_emails,
        }
    )


async def create(session: AsyncSession, tenant: Tenant, body: PipelineBody) -> PipelineOut:
    name = body.pipeline_name.strip()
    if not name:
        raise BadRequest("pipeline_name is required")
    now = utcnow()
    pipeline = Pipeline(
        id=new_uuid(),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        name=name,
        description=body.pipeline_description,
        color=body.pipeline_color,
        created_at=now,
        updated_at=now,
        **dict.fromkeys(COUNTERS, 0),
    )
    session.add(pipeline)
    await session.flush()
    return render(pipeline)


async def find(session: AsyncSession, tenant: Tenant, pipeline_id: str) -> Pipeline:
    """The tenant's pipeline, or the 404 (also for an id that is not a UUID)."""
    key = parse_uuid(pipeline_id)
    pipeline = (
        None
        if key is None
        else await session.scalar(select(Pipeline).where(Pipeline.id == key, tenant.owns(Pipeline)))
    )
    if pipeline is None:
        raise not_found()
    return pipeline


async def get(session: AsyncSession, tenant: Tenant, pipeline_id: str) -> PipelineOut:
    return render(await find(session, tenant, pipeline_id))


def page_bounds(limit: int | None, offset: int | None, default: int, most: int) -> tuple[int, int]:
    """The reference's paging rules: `limit` clamped to [1, most], `offset` >= 0."""
    if offset is not None and offset < 0:
        raise BadRequest("offset must be >= 0")
    if offset is not None and offset > 2**63 - 1:
        raise BadRequest("offset must be at most 9223372036854775807")
    size = default if limit is None else min(max(limit, 1), most)
    return size, offset or 0


async def list_pipelines(
    session: AsyncSession, tenant: Tenant, limit: int | None, offset: int | None
) -> PipelineList:
    size, skip = page_bounds(limit, offset, DEFAULT_LIMIT, MAX_LIMIT)
    rows = await session.scalars(
        select(Pipeline)
        .where(tenant.owns(Pipeline))
        .order_by(Pipeline.created_at.desc(), Pipeline.id.desc())
        .limit(size)
        .offset(skip)
    )
    data = [render(row) for row in rows]
    total = (
        await session.scalar(
            select(func.count()).select_from(Pipeline).where(tenant.owns(Pipeline))
        )
        or 0
    )
    page: dict[str, Any] = {"limit": size, "offset": skip, "total": total}
    page["has_more"] = skip + len(data) < total
    return PipelineList(data=data, pagination=Pagination.model_validate(page))
