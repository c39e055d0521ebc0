"""pydantic-ai models for the catalogue's three wire protocols.

SDK-level retries are off (each SDK client is made with `max_retries=0`; setting it per
request would copy the client on every call): the gateway retries itself so that it can
count attempts and honour Retry-After the same way for every provider. A base URL a tenant
stored (an OpenAI-compatible server, say) goes through the SSRF-guarded HTTP client;
server-wide base URLs come from the operator and are trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anthropic import AsyncAnthropic
from anthropic import DefaultAioHttpClient as AnthropicAioHttpClient
from openai import AsyncOpenAI
from openai import DefaultAioHttpClient as OpenAIAioHttpClient
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers import Provider
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.google import GoogleProvider
from pydantic_ai.providers.openai import OpenAIProvider

from openenrich.config import Settings
from openenrich.llm.catalogue import ModelRef
from openenrich.llm.keys import Credentials
from openenrich.web.client import guarded_client


@dataclass(frozen=True, slots=True)
class Built:
    """A model and what owns its connections: the pydantic-ai provider (an async context
    manager: `open()` enters it, `close()` leaves it and closes the HTTP client it made)."""

    model: Model
    provider: Provider[Any]

    async def open(self) -> None:
        await self.provider.__aenter__()

    async def close(self) -> None:
        await self.provider.__aexit__(None, None, None)
        client = self.provider.client  # the SDK's client may hold a pool of its own
        if hasattr(client, "aio"):  # google-genai
            await client.aio.aclose()
        elif hasattr(client, "close"):  # openai, anthropic: their HTTP client too
            await client.close()


def build_model(ref: ModelRef, credentials: Credentials, settings: Settings) -> Built:
    provider = ref.provider
    base_url = credentials.base_url or provider.base_url or None
    api_key = credentials.api_key or "not-needed"  # local servers that need no key
    if provider.api == "anthropic":
        anthropic = AnthropicProvider(
            anthropic_client=AsyncAnthropic(
                api_key=api_key,
                base_url=base_url,
                max_retries=0,
                http_client=AnthropicAioHttpClient(timeout=settings.llm_timeout_seconds),
            )
        )
        return Built(AnthropicModel(ref.name, provider=anthropic), anthropic)
    if provider.api == "google":
        google = GoogleProvider(api_key=api_key, base_url=base_url)
        return Built(GoogleModel(ref.name, provider=google), google)
    http_client: Any = OpenAIAioHttpClient(timeout=settings.llm_timeout_seconds)
    if credentials.source == "tenant" and credentials.base_url:
        http_client = guarded_client(
            allow_private=settings.allow_private_urls,
            allowed_hosts=settings.allowed_private_hosts,
            https_only=False,
            timeout=settings.llm_timeout_seconds,
            max_connections=settings.llm_provider_concurrency,
        )
    client = AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        http_client=http_client,
    )
    openai = OpenAIProvider(openai_client=client)
    return Built(OpenAIChatModel(ref.name, provider=openai), openai)
