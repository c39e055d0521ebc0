"""The entity-enrichment surface over HTTP, with the reference's `X-API-Key` header."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fixtures.fake_llm import FakeLLM
from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.tenancy import service
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

COMPANY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "legal_name": {"type": "string", "x-expertise": "company_profile"},
        "founded_year": {"type": ["integer", "null"], "x-expertise": "company_profile"},
        "annual_revenue_usd": {"type": ["number", "null"], "x-expertise": "financials"},
        "website": {"type": "string", "format": "uri"},
    },
    "required": ["legal_name"],
}


class Api:
    """One key's calls on the surface, as the reference's examples make them."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.client.request(method, path, headers=self.headers, json=body)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def create_schema(self, **fields: Any) -> dict[str, Any]:
        body = {
            "name": "Pharma companies",
            "entity_type": "company",
            "json_schema": COMPANY_SCHEMA,
            **fields,
        }
        schema: dict[str, Any] = self.ok(self.post("/api/schema/saved", body), 201)
        return schema


@pytest.fixture
def api(client: httpx.Client, tenants: Tenants) -> Api:
    return Api(client, tenants.key("acme"))


@pytest.fixture
def other(client: httpx.Client, tenants: Tenants) -> Api:
    """Another organisation on the same server."""
    return Api(client, tenants.key("globex"))


@pytest.fixture
def tenant(tenants: Tenants) -> Tenant:
    """acme's live environment, as services see it."""

    async def work(session: Any) -> str:
        organization = await service.ensure_organization(session, "acme")
        return organization.id

    return Tenant(tenants.run(work), Environment.LIVE)


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def llm_settings(settings: Settings, fake: FakeLLM) -> Settings:
    """The server's OpenAI and Anthropic keys, both providers on the fake."""
    return settings.model_copy(
        update={
            "provider_openai_api_key": "sk-server-openai",
            "provider_openai_base_url": f"{fake.url}/v1",
            "provider_anthropic_api_key": "sk-ant-server",
            "provider_anthropic_base_url": fake.url,
            "llm_backoff_seconds": 0.01,
            "llm_backoff_max_seconds": 0.5,
        }
    )
