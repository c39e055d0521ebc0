"""`POST /v1/pipelines/:id/columns`: a lead field (`base`), or one output of an AI,
multi-AI or Firecrawl template, shown beside a pipeline's leads.

An `ai` column takes a template by id or inline (created in the same transaction); a
`multi_ai` or `firecrawl` column takes a template by id and one of its output fields
(inline ones are refused, as the reference says). Adding a column that the pipeline
already has returns that column (200) instead of a second copy.
"""

from __future__ import annotations

from typing import cast

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.errors import BadRequest, describe_validation_errors
from openenrich.ids import new_uuid, utcnow
from openenrich.leads import fields, templates
from openenrich.leads.lookup import owned
from openenrich.leads.models import (
    AiTemplate,
    FirecrawlTemplate,
    MultiAiTemplate,
    Pipeline,
    PipelineColumn,
)
from openenrich.leads.schemas import (
    COLUMN_TYPES,
    AiTemplateBody,
    ColumnBody,
    ColumnOut,
    ColumnType,
)
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.tenant import Tenant

MAX_COLUMNS = 500  # per pipeline

FIRECRAWL_PREFIX = "Firecrawl: "  # the reference's literal prefix, not the template's name


def ai_key(name: str) -> str:
    return name


def multi_ai_key(name: str, field: str) -> str:
    return f"{name}: {field}"


def firecrawl_key(field: str) -> str:
    return f"{FIRECRAWL_PREFIX}{field}"


def _refuse_extra(body: ColumnBody, *names: str) -> None:
    """A field that the column's type does not use is a mistake worth telling."""
    for name in names:
        if getattr(body, name) is not None:
            article = "an" if body.type == "ai" else "a"
            raise BadRequest(f"{name} is not used by {article} {body.type} column")


async def _inline_ai(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, template: dict[str, object]
) -> AiTemplate:
    try:
        body = AiTemplateBody.model_validate(template)
    except ValidationError as error:
        problems = [{**e, "loc": ("template", *e["loc"])} for e in error.errors()]
        raise BadRequest(describe_validation_errors(problems)) from None
    return await templates.create_ai(session, gateway, tenant, body)


async def add(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, pipeline_id: str, body: ColumnBody
) -> tuple[ColumnOut, bool]:
    """The column, and whether it is new."""
    pipeline = await owned(session, tenant, Pipeline, pipeline_id, "Pipeline not found")
    if body.type not in COLUMN_TYPES:
        raise BadRequest(f"type must be one of {', '.join(COLUMN_TYPES)}")
    key: str | None = None
    template_id: str | None = None
    field: str | None = None
    custom_field_key: str | None = None
    if body.type == "base":
        _refuse_extra(body, "template", "template_id", "field")
        if body.key not in fields.LEAD_TEMPLATE_FIELDS:
            raise BadRequest(f"key must be a lead field: {', '.join(fields.LEAD_TEMPLATE_FIELDS)}")
        key = body.key
    elif body.type == "ai":
        _refuse_extra(body, "key", "field")
        if (body.template is None) == (body.template_id is None):
            raise BadRequest("An ai column takes either template_id or an inline template")
        if body.template is not None:
            ai = await _inline_ai(session, gateway, tenant, body.template)
        else:
            assert body.template_id is not None
            ai = await owned(session, tenant, AiTemplate, body.template_id, "AI template not found")
        template_id, custom_field_key = ai.id, ai_key(ai.name)
    else:
        _refuse_extra(body, "key")
        label = "multi-AI" if body.type == "multi_ai" else "Firecrawl"
        if body.template is not None:
            path = "multi-ai-templates" if body.type == "multi_ai" else "firecrawl-templates"
            raise BadRequest(
                f"Inline {label} templates aren't supported: create the template first "
                f"(POST /v1/columns/{path}), then attach it with template_id"
            )
        if body.template_id is None:
            raise BadRequest(f"template_id is required for a {body.type} column")
        if body.field is None:
            raise BadRequest(f"field is required for a {body.type} column (an output field)")
        missing = f"{label} template not found"
        found: MultiAiTemplate | FirecrawlTemplate = (
            await owned(session, tenant, MultiAiTemplate, body.template_id, missing)
            if body.type == "multi_ai"
            else await owned(session, tenant, FirecrawlTemplate, body.template_id, missing)
        )
        if body.field not in found.output_fields:
            raise BadRequest(
                "field must be one of the template's output_fields: "
                + ", ".join(found.output_fields)
            )
        template_id, field = found.id, body.field
        custom_field_key = (
            multi_ai_key(found.name, field) if body.type == "multi_ai" else firecrawl_key(field)
        )
    existing = (
        await session.scalars(
            select(PipelineColumn).where(
                PipelineColumn.pipeline_id == pipeline.id,
                PipelineColumn.type == body.type,
                PipelineColumn.key.is_(None) if key is None else PipelineColumn.key == key,
                PipelineColumn.template_id.is_(None)
                if template_id is None
                else PipelineColumn.template_id == template_id,
                PipelineColumn.field.is_(None) if field is None else PipelineColumn.field == field,
            )
        )
    ).first()
    if existing is not None:
        return _out(existing, custom_field_key), False
    count = await session.scalar(
        select(func.count()).where(PipelineColumn.pipeline_id == pipeline.id)
    )
    if (count or 0) >= MAX_COLUMNS:
        raise BadRequest(f"A pipeline has at most {MAX_COLUMNS} columns")
    now = utcnow()
    column = PipelineColumn(
        id=new_uuid(),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        pipeline_id=pipeline.id,
        type=body.type,
        key=key,
        template_id=template_id,
        field=field,
        created_at=now,
    )
    session.add(column)
    pipeline.updated_at = now
    await session.flush()
    return _out(column, custom_field_key), True


def _out(column: PipelineColumn, custom_field_key: str | None) -> ColumnOut:
    return ColumnOut(
        column_id=column.id,
        pipeline_id=column.pipeline_id,
        type=cast(ColumnType, column.type),
        key=column.key,
        template_id=column.template_id,
        field=column.field,
        custom_field_key=custom_field_key,
        created_at=column.created_at,
    )


async def listed(session: AsyncSession, tenant: Tenant, pipeline_id: str) -> list[ColumnOut]:
    """The pipeline's columns in the order they were added, each with the key its values
    have in `lead_custom_fields` (a template's name, as it was when enrichment ran)."""
    pipeline = await owned(session, tenant, Pipeline, pipeline_id, "Pipeline not found")
    found = list(
        await session.scalars(
            select(PipelineColumn)
            .where(PipelineColumn.pipeline_id == pipeline.id)
            .order_by(PipelineColumn.created_at, PipelineColumn.id)
        )
    )
    names: dict[str, str] = {}
    for model in (AiTemplate, MultiAiTemplate):
        ids = [c.template_id for c in found if c.template_id is not None]
        if ids:
            rows = await session.execute(
                select(model.id, model.name).where(
                    model.id.in_(ids),
                    model.org_id == tenant.org_id,
                    model.environment == tenant.environment.value,
                )
            )
            names.update({row.id: row.name for row in rows})
    return [_out(column, _custom_key(column, names)) for column in found]


def _custom_key(column: PipelineColumn, names: dict[str, str]) -> str | None:
    name = names.get(column.template_id or "")
    if column.type == "ai" and name is not None:
        return ai_key(name)
    if column.type == "multi_ai" and name is not None and column.field is not None:
        return multi_ai_key(name, column.field)
    if column.type == "firecrawl" and column.field is not None:
        return firecrawl_key(column.field)
    return None
