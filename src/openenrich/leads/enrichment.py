"""Enrichment jobs: AI_COLUMN, MULTI_AI_COLUMN and FIRECRAWL_EXTRACT over a pipeline's
leads, through the lead-job machinery (jobs.py).

Each lead's values land in its `custom_fields` under the reference's keys: `{template
name}` (AI), `{template name}: {field}` (multi-AI) and `Firecrawl: {field}` (literally
"Firecrawl", whatever the template is called), added to what is there without touching
other keys. The template is copied into the job when it starts, so a restarted job asks
the same question. Provider keys are checked before the job is created: a model whose
provider has no key is the 400 `No API key found for <PROVIDER>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.enrichers.scrape import fields_schema, scrape_and_extract
from openenrich.errors import BadRequest
from openenrich.ids import utcnow
from openenrich.jobs.idempotency import Idempotency, create_once
from openenrich.jobs.notify import JobHub
from openenrich.jobs.worker import JobContext
from openenrich.leads import fields, jobs, templates
from openenrich.leads.columns import ai_key, firecrawl_key, multi_ai_key
from openenrich.leads.lookup import owned
from openenrich.leads.models import AiTemplate, Lead, MultiAiTemplate, Pipeline, PipelineLead
from openenrich.leads.schemas import (
    ENRICHMENT_TYPES,
    EnrichmentJob,
    EnrichmentProgress,
    EnrichmentStart,
)
from openenrich.llm import keys
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.tenant import Tenant
from openenrich.web.fetch import Fetcher

ENRICHMENT = jobs.Family(
    name="enrichment",
    kind="leads.enrichment",
    type_field="enrichment_type",
    label="Enrichment job",
    progress=EnrichmentProgress,
    record=EnrichmentJob,
)

# A multi-AI answer: one value per output field, each a JSON scalar (or null).
_SCALAR = {"type": ["string", "number", "integer", "boolean", "null"]}


def multi_ai_schema(output_fields: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict.fromkeys(output_fields, _SCALAR),
        "required": list(output_fields),
        "additionalProperties": False,
    }


# -- starting ----------------------------------------------------------------------------------


async def _config(
    session: AsyncSession,
    settings: Settings,
    tenant: Tenant,
    enrichment_type: str,
    body: EnrichmentStart,
) -> tuple[dict[str, Any], list[str]]:
    """What the job keeps (the template, or the extraction config) and the custom-field
    keys it writes."""
    if enrichment_type == "AI_COLUMN":
        if body.ai_template_id is None:
            raise BadRequest("ai_template_id is required for AI_COLUMN")
        ai = await owned(session, tenant, AiTemplate, body.ai_template_id, "AI template not found")
        return templates.snapshot(ai), [ai_key(ai.name)]
    if enrichment_type == "MULTI_AI_COLUMN":
        if body.multi_ai_template_id is None:
            raise BadRequest("multi_ai_template_id is required for MULTI_AI_COLUMN")
        multi_id, missing = body.multi_ai_template_id, "Multi-AI template not found"
        multi = await owned(session, tenant, MultiAiTemplate, multi_id, missing)
        return templates.snapshot(multi), [multi_ai_key(multi.name, f) for f in multi.output_fields]
    extract = body.firecrawl_extract_config
    if extract is None:
        raise BadRequest("firecrawl_extract_config is required for FIRECRAWL_EXTRACT")
    outputs = templates.output_fields(extract.output_fields)
    if not extract.prompt.strip():
        raise BadRequest("firecrawl_extract_config.prompt: must not be blank")
    url_column = await templates.check_url_column(session, tenant, extract.url_column)
    config = {
        "url_column": url_column,
        "prompt": extract.prompt,
        "output_fields": outputs,
        "model": settings.leads_extract_model,
    }
    return config, [firecrawl_key(name) for name in outputs]


async def _check_keys(
    gateway: Gateway, tenant: Tenant, enrichment_type: str, config: dict[str, Any]
) -> None:
    """The 400 `No API key found for …` before any work. FIRECRAWL_EXTRACT needs a Firecrawl
    key, or else a key for the model that extracts from pages we fetch ourselves."""
    if enrichment_type != "FIRECRAWL_EXTRACT":
        endpoint_url = config["endpoint_url"]
        model = templates.call_model(config["model"], endpoint_url)
        await gateway.ready(tenant, model, base_url=endpoint_url)
        return
    try:
        async with gateway.database.session() as session:
            await keys.credentials(session, gateway.box, gateway.settings, tenant, keys.FIRECRAWL)
    except keys.MissingProviderKey:
        try:
            await gateway.ready(tenant, config["model"])
        except keys.MissingProviderKey:
            raise keys.MissingProviderKey(keys.FIRECRAWL) from None


async def start(
    database: Database,
    hub: JobHub,
    gateway: Gateway,
    tenant: Tenant,
    body: EnrichmentStart,
    idempotency: Idempotency | None,
) -> tuple[EnrichmentJob, bool]:
    """A new job, committed (or the one an earlier request with the same Idempotency-Key
    made), and whether it is new."""
    enrichment_type = body.enrichment_type
    if not isinstance(enrichment_type, str) or enrichment_type not in ENRICHMENT_TYPES:
        raise BadRequest("invalid enrichment_type")
    chosen = jobs.targets(body.pipeline_id, body.lead_ids, body.limit)
    async with database.session() as session:
        await jobs.check_targets(session, tenant, chosen)
        config, written = await _config(session, gateway.settings, tenant, enrichment_type, body)
    await _check_keys(gateway, tenant, enrichment_type, config)

    async def create(session: AsyncSession) -> str:
        job_id = await jobs.create(
            session, hub, ENRICHMENT, tenant, chosen, enrichment_type, config
        )
        await fields.remember_keys(session, tenant, written)
        return job_id

    async def describe(session: AsyncSession, job_id: str) -> EnrichmentJob:
        record = await jobs.record_in(session, ENRICHMENT, tenant, job_id)
        assert isinstance(record, EnrichmentJob)
        return record

    made = await create_once(database, hub, ENRICHMENT.view, tenant, idempotency, create, describe)
    return made.resource, made.new


# -- running -------------------------------------------------------------------------------------

_leads = table(Lead)
_pipeline_leads = table(PipelineLead)
_pipelines = table(Pipeline)

_NOW_ENRICHED = (
    _leads.update()
    .where(
        _leads.c.id.in_(bindparam("lead_ids", expanding=True)),
        _leads.c.enrichment_status != "ENRICHED",
    )
    .values(enrichment_status="ENRICHED", updated_at=bindparam("now"))
    .returning(_leads.c.id)
)
_NOW_FAILED = (
    _leads.update()
    .where(
        _leads.c.id.in_(bindparam("lead_ids", expanding=True)),
        _leads.c.enrichment_status == "NOT_ENRICHED",
    )
    .values(enrichment_status="FAILED", updated_at=bindparam("now"))
)
_PIPELINES_OF = (
    select(_pipeline_leads.c.pipeline_id, func.count().label("leads"))
    .where(_pipeline_leads.c.lead_id.in_(bindparam("lead_ids", expanding=True)))
    .group_by(_pipeline_leads.c.pipeline_id)
    .order_by(_pipeline_leads.c.pipeline_id)
)
_ADD_ENRICHED = (
    _pipelines.update()
    .where(_pipelines.c.id == bindparam("pipeline_id"))
    .values(enriched_leads=_pipelines.c.enriched_leads + bindparam("leads"))
)


class Enrich:
    """What the three enrichment types share: how a group of results is stored."""

    def __init__(self, ctx: JobContext, config: dict[str, Any]) -> None:
        assert ctx.parts is not None, "the worker gives jobs the process's parts"
        self.gateway = ctx.parts.get(Gateway)
        self.tenant = ctx.tenant
        self.job_id = ctx.job_id
        self.config = config

    async def run(self, item: jobs.Item) -> jobs.Outcome:
        assert item.lead is not None
        return jobs.Outcome(item, "done", values=await self.values(item.lead))

    async def values(self, lead: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def record(self, session: AsyncSession, outcomes: Sequence[jobs.Outcome]) -> None:
        """Values into custom_fields; each lead's enrichment status; every pipeline that
        holds a lead newly ENRICHED counts it (once, however many jobs enrich it)."""
        now = utcnow()
        done = {o.item.lead_id: o.values for o in outcomes if o.status == "done"}
        failed = sorted(o.item.lead_id for o in outcomes if o.status == "failed")
        await fields.merge_custom_fields(session, done)
        if done:
            changed = list(
                await session.scalars(_NOW_ENRICHED, {"lead_ids": sorted(done), "now": now})
            )
            counts = (
                [
                    {"pipeline_id": row.pipeline_id, "leads": row.leads}
                    for row in await session.execute(_PIPELINES_OF, {"lead_ids": sorted(changed)})
                ]
                if changed
                else []
            )
            if counts:
                await session.execute(_ADD_ENRICHED, counts)
        if failed:
            await session.execute(_NOW_FAILED, {"lead_ids": failed, "now": now})


class AiColumn(Enrich):
    async def values(self, lead: dict[str, Any]) -> dict[str, Any]:
        config = self.config
        result = await self.gateway.complete(
            self.tenant,
            templates.call_model(config["model"], config["endpoint_url"]),
            fields.render(config["prompt_template"], lead),
            max_tokens=config["max_tokens"],
            job_id=self.job_id,
            base_url=config["endpoint_url"],
        )
        text = result.value if isinstance(result.value, str) else str(result.value)
        return {ai_key(config["name"]): text.strip()}


class MultiAiColumn(Enrich):
    async def values(self, lead: dict[str, Any]) -> dict[str, Any]:
        config = self.config
        outputs = config["output_fields"]
        result = await self.gateway.complete(
            self.tenant,
            templates.call_model(config["model"], config["endpoint_url"]),
            fields.render(config["prompt_template"], lead),
            output_schema=multi_ai_schema(outputs),
            max_tokens=config["max_tokens"],
            job_id=self.job_id,
            base_url=config["endpoint_url"],
        )
        return {multi_ai_key(config["name"], name): result.value.get(name) for name in outputs}


# `mailto:…`, `tel:…`: a scheme without `//` (but `acme.com:8080` is a host and a port).
_OTHER_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:(?!\d)", re.IGNORECASE)


def page_url(value: Any, url_column: str) -> str:
    """The URL a lead's `url_column` holds; a bare host (`acme.com`) is taken as https."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise BadRequest(f"The lead has no URL in {url_column}")
    if "://" not in text and not _OTHER_SCHEME.match(text):
        text = f"https://{text}"
    if "://" not in text or urlsplit(text).scheme.lower() not in ("http", "https"):
        raise BadRequest(f"{url_column} is not an http(s) URL: {text[:200]}")
    return text


class FirecrawlExtract(Enrich):
    def __init__(self, ctx: JobContext, config: dict[str, Any]) -> None:
        super().__init__(ctx, config)
        assert ctx.parts is not None
        self.fetcher = ctx.parts.get(Fetcher)
        fields_schema(config["output_fields"])  # the same check the extraction makes

    async def values(self, lead: dict[str, Any]) -> dict[str, Any]:
        config = self.config
        url = page_url(fields.field_value(lead, config["url_column"]), config["url_column"])
        scraped = await scrape_and_extract(
            self.gateway,
            self.fetcher,
            self.tenant,
            url,
            config["prompt"],
            config["output_fields"],
            model=config["model"],
            job_id=self.job_id,
        )
        return {firecrawl_key(name): scraped.values.get(name) for name in config["output_fields"]}


_STEPS: dict[str, type[Enrich]] = {
    "AI_COLUMN": AiColumn,
    "MULTI_AI_COLUMN": MultiAiColumn,
    "FIRECRAWL_EXTRACT": FirecrawlExtract,
}


async def _step(ctx: JobContext, enrichment_type: str, config: dict[str, Any]) -> jobs.Step:
    return _STEPS[enrichment_type](ctx, config)


async def execute(ctx: JobContext) -> None:
    await jobs.execute(ctx, ENRICHMENT, _step)
