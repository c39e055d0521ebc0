"""scrape_and_extract: a page read through the guard, and a model (the fake provider)
asked for the named fields; or, with a tenant FIRECRAWL key, a Firecrawl-compatible API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fixtures.fake_llm import Answer, FakeLLM
from fixtures.site import StaticSite
from helpers.http import LocalServer, Received, Reply
from helpers.llm import with_gateway
from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.enrichers.scrape import Scraped, scrape_and_extract
from openenrich.llm import keys
from openenrich.llm.gateway import Gateway, InvalidOutput
from openenrich.secretbox import load_secret_box
from openenrich.tenancy import service
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant
from openenrich.web.fetch import BlockedURL, Fetcher


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def site() -> Iterator[StaticSite]:
    with StaticSite() as server:
        yield server


@pytest.fixture
def scrape_settings(settings: Settings, fake: FakeLLM, site: StaticSite) -> Settings:
    return settings.model_copy(
        update={
            "provider_openai_api_key": "sk-server",
            "provider_openai_base_url": f"{fake.url}/v1",
            "allowed_private_hosts": [f"127.0.0.1:{site.port}"],
        }
    )


@pytest.fixture
def tenant(tenants: Tenants) -> Tenant:
    async def work(session: object) -> str:
        return (await service.ensure_organization(session, "acme")).id  # type: ignore[arg-type]

    return Tenant(tenants.run(work), Environment.LIVE)


def scrape(settings: Settings, tenant: Tenant, url: str, fields: list[str]) -> Scraped:
    async def work(gateway: Gateway) -> Scraped:
        fetcher = Fetcher(settings)
        try:
            return await scrape_and_extract(
                gateway, fetcher, tenant, url, "Extract the tagline and founding year.", fields
            )
        finally:
            await fetcher.close()

    return with_gateway(settings, work)


def test_a_page_read_and_its_fields_extracted(
    scrape_settings: Settings, tenant: Tenant, fake: FakeLLM, site: StaticSite
) -> None:
    fake.script(Answer(json={"tagline": "Warehouses that move themselves.", "founded": "2014"}))
    scraped = scrape(scrape_settings, tenant, f"{site.url}/article", ["tagline", "founded"])
    assert scraped.values == {"tagline": "Warehouses that move themselves.", "founded": "2014"}
    assert (scraped.source, scraped.title) == ("fetch", "Acme Robotics — About us")
    assert scraped.cost > 0
    request = fake.requests()[0]
    prompt = request["messages"][-1]["content"]
    assert "Extract the tagline and founding year." in prompt
    assert "founded in 2014 in Boston" in prompt  # the page's main content
    assert "should never appear" not in prompt  # not its scripts
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["tagline", "founded"]
    assert schema["properties"]["tagline"] == {"type": ["string", "null"]}


def test_the_answer_must_have_exactly_the_fields(
    scrape_settings: Settings, tenant: Tenant, fake: FakeLLM, site: StaticSite
) -> None:
    settings = scrape_settings.model_copy(update={"llm_schema_retries": 0})
    fake.script(Answer(json={"tagline": "x"}))
    with pytest.raises(InvalidOutput, match="'founded' is a required property"):
        scrape(settings, tenant, f"{site.url}/article", ["tagline", "founded"])


def test_the_guard_applies(scrape_settings: Settings, tenant: Tenant, fake: FakeLLM) -> None:
    with pytest.raises(BlockedURL):
        scrape(scrape_settings, tenant, "http://169.254.169.254/latest/meta-data", ["x"])
    assert fake.received == []


def test_firecrawl_when_the_tenant_has_its_key(
    scrape_settings: Settings, tenant: Tenant, tenants: Tenants, fake: FakeLLM
) -> None:
    def firecrawl_reply(number: int, received: Received) -> Reply:
        body = json.loads(received.body)
        data = {"json": {"tagline": "From Firecrawl", "founded": None}, "metadata": {}}
        assert body["formats"] == ["json"]
        return Reply(body=json.dumps({"success": True, "data": data}).encode())

    with LocalServer(firecrawl_reply) as firecrawl:
        settings = scrape_settings.model_copy(
            update={"allowed_private_hosts": [f"127.0.0.1:{firecrawl.port}"]}
        )

        async def store(session: object) -> None:
            await keys.put_key(
                session,  # type: ignore[arg-type]
                load_secret_box(settings),
                tenant,
                keys.FIRECRAWL,
                "fc-tenant-key",
                firecrawl.url,
                allow_private=settings.allow_private_urls,
                allowed_hosts=settings.allowed_private_hosts,
            )

        tenants.run(store)
        scraped = scrape(settings, tenant, "https://acme.example/", ["tagline", "founded"])
    assert scraped.values == {"tagline": "From Firecrawl", "founded": None}
    assert scraped.source == "firecrawl"
    (request,) = firecrawl.received
    assert request.path == "/v1/scrape"
    assert request.headers["authorization"] == "Bearer fc-tenant-key"
    sent = json.loads(request.body)
    assert sent["url"] == "https://acme.example/"
    assert sent["jsonOptions"]["schema"]["required"] == ["tagline", "founded"]
    assert fake.received == []  # no LLM call of ours
