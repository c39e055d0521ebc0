from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.fake_llm import FakeLLM
from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.tenancy import service
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def llm_settings(settings: Settings, fake: FakeLLM) -> Settings:
    """Server-wide keys for the three wire protocols, all pointing at the fake."""
    return settings.model_copy(
        update={
            "provider_openai_api_key": "sk-server-openai",
            "provider_openai_base_url": f"{fake.url}/v1",
            "provider_anthropic_api_key": "sk-ant-server",
            "provider_anthropic_base_url": fake.url,
            "provider_google_api_key": "google-server",
            "provider_google_base_url": fake.url,
            "llm_backoff_seconds": 0.01,
            "llm_backoff_max_seconds": 2.0,
        }
    )


@pytest.fixture
def tenant(tenants: Tenants) -> Tenant:
    async def work(session: object) -> str:
        organization = await service.ensure_organization(session, "acme")  # type: ignore[arg-type]
        return organization.id

    return Tenant(tenants.run(work), Environment.LIVE)
