"""`scrape_and_extract(url, prompt, output_fields)`: read a page, and have a model pull the
named fields out of it (each a string, or null when the page does not say).

With a tenant `FIRECRAWL` key the Firecrawl-compatible API does both steps; otherwise
`Fetcher.fetch` + `extract` + `Gateway.complete` with a schema built from the fields.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator

from openenrich.enrichers.firecrawl import FirecrawlClient
from openenrich.errors import BadRequest
from openenrich.llm import keys
from openenrich.llm.gateway import Gateway, InvalidOutput
from openenrich.llm.keys import FIRECRAWL, MissingProviderKey
from openenrich.tenancy.tenant import Tenant
from openenrich.web.client import guarded_client
from openenrich.web.extract import extract
from openenrich.web.fetch import Fetcher

MAX_PAGE_CHARS = 60_000  # about 15k tokens: enough for a page's main content
SYSTEM = (
    "You extract facts from one web page. Use only what the page says; when it does not "
    "say, use null. Answer with the JSON object only."
)


@dataclass(frozen=True, slots=True)
class Scraped:
    values: dict[str, Any]
    url: str
    title: str | None
    source: str  # "fetch" or "firecrawl"
    cost: Decimal = Decimal(0)


def fields_schema(output_fields: list[str]) -> dict[str, Any]:
    if not output_fields or len(set(output_fields)) != len(output_fields):
        raise BadRequest("output_fields must be a non-empty list of distinct names")
    return {
        "type": "object",
        "properties": {name: {"type": ["string", "null"]} for name in output_fields},
        "required": list(output_fields),
        "additionalProperties": False,
    }


async def scrape_and_extract(
    gateway: Gateway,
    fetcher: Fetcher,
    tenant: Tenant,
    url: str,
    prompt: str,
    output_fields: list[str],
    *,
    model: str = "gpt-4o-mini",
    job_id: str | None = None,
) -> Scraped:
    schema = fields_schema(output_fields)
    firecrawl = await _firecrawl(gateway, tenant)
    if firecrawl is not None:
        return await _with_firecrawl(firecrawl, url, prompt, schema)
    page = await fetcher.fetch(url)
    content = await asyncio.to_thread(extract, page.text, page.url)
    text = content.markdown[:MAX_PAGE_CHARS]
    result = await gateway.complete(
        tenant,
        model,
        f"{prompt}\n\nFields: {', '.join(output_fields)}\n\n"
        f"Page: {page.url}\nTitle: {content.title or ''}\n\n{text}",
        output_schema=schema,
        system=SYSTEM,
        temperature=0,
        job_id=job_id,
    )
    return Scraped(result.value, page.url, content.title, "fetch", result.cost)


async def _firecrawl(gateway: Gateway, tenant: Tenant) -> FirecrawlClient | None:
    settings = gateway.settings
    try:
        async with gateway.database.session() as session:
            credentials = await keys.credentials(session, gateway.box, settings, tenant, FIRECRAWL)
    except MissingProviderKey:
        return None
    assert credentials.api_key is not None
    http = guarded_client(
        allow_private=settings.allow_private_urls or credentials.source == "server",
        allowed_hosts=settings.allowed_private_hosts,
        https_only=False,
        timeout=max(60.0, settings.fetch_timeout_seconds),
    )
    return FirecrawlClient(http, credentials.api_key, credentials.base_url)


async def _with_firecrawl(
    client: FirecrawlClient, url: str, prompt: str, schema: dict[str, Any]
) -> Scraped:
    try:
        value = await client.extract(url, prompt, schema)
    finally:
        await client.close()
    problems = [error.message for error in Draft202012Validator(schema).iter_errors(value)]
    if problems:
        raise InvalidOutput(f"Firecrawl's answer did not match the fields: {'; '.join(problems)}")
    return Scraped(value, url, None, "firecrawl")
