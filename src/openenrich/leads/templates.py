"""AI, multi-AI and Firecrawl templates: checked when saved, listed newest first.

A model is checked against the LLM gateway's catalogue (the reference's allow-list: a
variant such as `gemini-2.0-flash-exp` is refused, naming the allowed models), and its
provider is found from its name. A template with an `endpoint_url` names a custom
OpenAI-compatible deployment instead: any model name goes (its server decides), the URL
must pass the SSRF guard, and calls to it carry the tenant's own `OPENAI_COMPATIBLE` key or
none. Every `{{placeholder}}` must name a field the tenant's leads have (see fields.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.errors import BadRequest
from openenrich.ids import new_uuid, utcnow
from openenrich.leads import fields
from openenrich.leads.models import AiTemplate, FirecrawlTemplate, MultiAiTemplate
from openenrich.leads.schemas import (
    AiTemplateBody,
    AiTemplateList,
    AiTemplateOut,
    FirecrawlTemplateBody,
    FirecrawlTemplateList,
    FirecrawlTemplateOut,
    MultiAiTemplateBody,
    MultiAiTemplateList,
    MultiAiTemplateOut,
    Pagination,
)
from openenrich.llm.catalogue import SEPARATOR, UnknownModel
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.tenant import Tenant
from openenrich.web.guard import UnsafeURL, resolve_public

CUSTOM_PROVIDER = "openai_compatible"
LIST_LIMIT = 10_000  # the most a listing page holds (as the leads listing)

T = TypeVar("T", AiTemplate, MultiAiTemplate, FirecrawlTemplate)


# -- models ----------------------------------------------------------------------------------


def call_model(model: str, endpoint_url: str | None) -> str:
    """The name the gateway is asked for: a template with an `endpoint_url` speaks to a
    custom OpenAI-compatible deployment, which takes any model name."""
    if endpoint_url is None or model.startswith(CUSTOM_PROVIDER + SEPARATOR):
        return model
    return f"{CUSTOM_PROVIDER}{SEPARATOR}{model}"


def provider_of(gateway: Gateway, model: str, endpoint_url: str | None) -> str:
    """The provider's key name (OPENAI, GOOGLE, PERPLEXITY, …) the model is sent to."""
    try:
        return gateway.catalogue.resolve(call_model(model, endpoint_url)).provider.key_name
    except UnknownModel:  # the operator's catalogue no longer lists it
        return "UNKNOWN"


async def check_model(gateway: Gateway, model: str, endpoint_url: str | None) -> str | None:
    """The template's model and endpoint_url, checked; returns the endpoint_url to store.
    Raises the gateway's UnknownModel (400, with `allowed_models`) for a name the
    catalogue does not allow."""
    model = model.strip()
    if not model:
        raise BadRequest("model: is required")
    if endpoint_url is None:
        gateway.catalogue.resolve(model)
        return None
    url = endpoint_url.strip()
    settings = gateway.settings
    try:
        await resolve_public(
            url,
            allow_private=settings.allow_private_urls,
            allowed_hosts=settings.allowed_private_hosts,
            https_only=False,
        )
    except UnsafeURL as error:
        raise BadRequest(f"endpoint_url: {error}") from None
    gateway.catalogue.resolve(call_model(model, url))
    return url.rstrip("/")


def _name(value: str) -> str:
    name = value.strip()
    if not name:
        raise BadRequest("name: must not be blank")
    return name


def output_fields(values: list[str]) -> list[str]:
    cleaned = [value.strip() for value in values]
    if any(not value for value in cleaned):
        raise BadRequest("output_fields: names must not be blank")
    if len(set(cleaned)) != len(cleaned):
        raise BadRequest("output_fields: names must be distinct")
    return cleaned


async def check_url_column(session: AsyncSession, tenant: Tenant, url_column: str) -> str:
    """A lead-field suffix (`company_website`) or a custom-field key of the tenant's leads."""
    column = url_column.strip()
    suffix = column.removeprefix("lead_")
    if column != suffix and suffix in fields.LEAD_TEMPLATE_FIELDS:
        raise BadRequest(
            f'url_column is the lead-field suffix: pass "{suffix}", not "{column}"',
        )
    await fields.check_names(session, tenant, [column], "url_column")
    return column


def _owner(tenant: Tenant) -> dict[str, str]:
    return {"org_id": tenant.org_id, "environment": tenant.environment.value}


# -- creating ----------------------------------------------------------------------------------


async def create_ai(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, body: AiTemplateBody
) -> AiTemplate:
    name = _name(body.name)
    endpoint_url = await check_model(gateway, body.model, body.endpoint_url)
    await fields.check_template(session, tenant, body.prompt_template, "prompt_template")
    row = AiTemplate(
        id=new_uuid(),
        name=name,
        prompt_template=body.prompt_template,
        model=body.model.strip(),
        endpoint_url=endpoint_url,
        max_tokens=body.max_tokens,
        created_at=utcnow(),
        **_owner(tenant),
    )
    session.add(row)
    await session.flush()
    return row


async def create_multi_ai(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, body: MultiAiTemplateBody
) -> MultiAiTemplate:
    name = _name(body.name)
    outputs = output_fields(body.output_fields)
    endpoint_url = await check_model(gateway, body.model, body.endpoint_url)
    await fields.check_template(session, tenant, body.prompt_template, "prompt_template")
    row = MultiAiTemplate(
        id=new_uuid(),
        name=name,
        output_fields=outputs,
        prompt_template=body.prompt_template,
        model=body.model.strip(),
        endpoint_url=endpoint_url,
        max_tokens=body.max_tokens,
        created_at=utcnow(),
        **_owner(tenant),
    )
    session.add(row)
    await session.flush()
    return row


async def create_firecrawl(
    session: AsyncSession, tenant: Tenant, body: FirecrawlTemplateBody
) -> FirecrawlTemplate:
    name = _name(body.name)
    outputs = output_fields(body.output_fields)
    url_column = await check_url_column(session, tenant, body.url_column)
    if not body.prompt.strip():
        raise BadRequest("prompt: must not be blank")
    row = FirecrawlTemplate(
        id=new_uuid(),
        name=name,
        url_column=url_column,
        prompt=body.prompt,
        output_fields=outputs,
        created_at=utcnow(),
        **_owner(tenant),
    )
    session.add(row)
    await session.flush()
    return row


# -- answers -------------------------------------------------------------------------------------


def ai_out(gateway: Gateway, row: AiTemplate) -> AiTemplateOut:
    return AiTemplateOut(
        ai_column_template_id=row.id,
        name=row.name,
        prompt_template=row.prompt_template,
        model=row.model,
        provider=provider_of(gateway, row.model, row.endpoint_url),
        endpoint_url=row.endpoint_url,
        max_tokens=row.max_tokens,
        created_at=row.created_at,
    )


def multi_ai_out(gateway: Gateway, row: MultiAiTemplate) -> MultiAiTemplateOut:
    return MultiAiTemplateOut(
        multi_ai_id=row.id,
        name=row.name,
        output_fields=row.output_fields,
        prompt_template=row.prompt_template,
        model=row.model,
        provider=provider_of(gateway, row.model, row.endpoint_url),
        endpoint_url=row.endpoint_url,
        max_tokens=row.max_tokens,
        created_at=row.created_at,
    )


def firecrawl_out(row: FirecrawlTemplate) -> FirecrawlTemplateOut:
    return FirecrawlTemplateOut(
        firecrawl_id=row.id,
        name=row.name,
        url_column=row.url_column,
        prompt=row.prompt,
        output_fields=row.output_fields,
        created_at=row.created_at,
    )


# -- listing -------------------------------------------------------------------------------------


def clamp_limit(limit: int) -> int:
    return min(max(limit, 1), LIST_LIMIT)


async def _page(
    session: AsyncSession, tenant: Tenant, model: type[T], limit: int, offset: int
) -> tuple[list[T], Pagination]:
    limit = clamp_limit(limit)
    total = int(
        await session.scalar(select(func.count()).select_from(model).where(tenant.owns(model))) or 0
    )
    rows = list(
        await session.scalars(
            select(model)
            .where(tenant.owns(model))
            .order_by(model.created_at.desc(), model.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    return rows, Pagination(
        limit=limit, offset=offset, total=total, has_more=offset + len(rows) < total
    )


async def list_ai(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, limit: int, offset: int
) -> AiTemplateList:
    rows, pagination = await _page(session, tenant, AiTemplate, limit, offset)
    return AiTemplateList(data=[ai_out(gateway, row) for row in rows], pagination=pagination)


async def list_multi_ai(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, limit: int, offset: int
) -> MultiAiTemplateList:
    rows, pagination = await _page(session, tenant, MultiAiTemplate, limit, offset)
    return MultiAiTemplateList(
        data=[multi_ai_out(gateway, row) for row in rows], pagination=pagination
    )


async def list_firecrawl(
    session: AsyncSession, tenant: Tenant, limit: int, offset: int
) -> FirecrawlTemplateList:
    rows, pagination = await _page(session, tenant, FirecrawlTemplate, limit, offset)
    return FirecrawlTemplateList(data=[firecrawl_out(row) for row in rows], pagination=pagination)


def snapshot(row: AiTemplate | MultiAiTemplate) -> dict[str, Any]:
    """What a job keeps of a template when it starts (so a restart runs the same prompt)."""
    values: dict[str, Any] = {
        "template_id": row.id,
        "name": row.name,
        "prompt_template": row.prompt_template,
        "model": row.model,
        "endpoint_url": row.endpoint_url,
        "max_tokens": row.max_tokens,
    }
    if isinstance(row, MultiAiTemplate):
        values["output_fields"] = row.output_fields
    return values


# -- what the routes call ------------------------------------------------------------------------


async def save_ai(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, body: AiTemplateBody
) -> AiTemplateOut:
    return ai_out(gateway, await create_ai(session, gateway, tenant, body))


async def save_multi_ai(
    session: AsyncSession, gateway: Gateway, tenant: Tenant, body: MultiAiTemplateBody
) -> MultiAiTemplateOut:
    return multi_ai_out(gateway, await create_multi_ai(session, gateway, tenant, body))


async def save_firecrawl(
    session: AsyncSession, tenant: Tenant, body: FirecrawlTemplateBody
) -> FirecrawlTemplateOut:
    return firecrawl_out(await create_firecrawl(session, tenant, body))
