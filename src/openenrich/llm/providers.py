"""The model for each of the catalogue's three wire protocols.

OpenAI's protocol (OpenAI, Perplexity, DeepSeek, OpenAI-compatible servers) is spoken by
our own `ChatCompletionsModel` on aiohttp (llm/chat_completions.py says why); Anthropic and
Gemini by pydantic-ai's models on their SDKs. SDK-level retries are off (each SDK client is
made with `max_retries=0`; setting it per request would copy the client on every call): the
gateway retries itself so that it can count attempts and honour Retry-After the same way
for every provider. A base URL a tenant stored (an OpenAI-compatible server, say) is
reached through the SSRF-guarded connector; server-wide base URLs come from the operator
and are trusted.
"""

from __future__ import annotations

import importlib
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic_ai.models import Model
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.providers import Provider

from openenrich.config import Settings
from openenrich.llm.catalogue import ModelRef
from openenrich.llm.chat_completions import ChatCompletionsClient, ChatCompletionsModel
from openenrich.llm.keys import Credentials
from openenrich.web.client import guarded_connector

logger = logging.getLogger("openenrich.llm")


@dataclass(frozen=True, slots=True)
class Built:
    """A model and what owns its connections (an async context manager: `open()` enters
    it, `close()` leaves it and closes the connections it made)."""

    model: Model
    connections: AbstractAsyncContextManager[Any]

    async def open(self) -> None:
        await self.connections.__aenter__()

    async def close(self) -> None:
        await self.connections.__aexit__(None, None, None)


class _SdkConnections:
    """A pydantic-ai provider, and the SDK client under it, which may hold a pool of its
    own that leaving the provider does not close."""

    def __init__(self, provider: Provider[Any]) -> None:
        self.provider = provider

    async def __aenter__(self) -> None:
        await self.provider.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self.provider.__aexit__(None, None, None)
        client = self.provider.client
        if hasattr(client, "aio"):  # google-genai
            await client.aio.aclose()
        elif hasattr(client, "close"):  # anthropic: its HTTP client too
            await client.close()


# The SDK modules `build_model` imports for an API, loaded by `load_sdk` beforehand.
_SDK_MODULES = {
    "anthropic": ("anthropic", "pydantic_ai.models.anthropic", "pydantic_ai.providers.anthropic"),
    "google": ("pydantic_ai.models.google", "pydantic_ai.providers.google"),
}


def load_sdk(api: str) -> None:
    """Import the SDK an API's models need (seconds, the first time). The gateway runs this
    in a thread before it first builds such a model: imported on the event loop, the
    Anthropic SDK stopped every other request of the process for ~4 s, heartbeats too."""
    for name in _SDK_MODULES.get(api, ()):
        importlib.import_module(name)


def build_model(ref: ModelRef, credentials: Credentials, settings: Settings) -> Built:
    provider = ref.provider
    base_url = credentials.base_url or provider.base_url or None
    # The Anthropic and Gemini SDKs are imported when a model of theirs is first made:
    # with pydantic-ai's models for them they take ~60 MiB of memory (measured at import),
    # which a server whose tenants use neither would carry for nothing.
    if provider.api == "anthropic":
        from anthropic import AsyncAnthropic
        from anthropic import DefaultAioHttpClient as AnthropicAioHttpClient
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        anthropic = AnthropicProvider(
            anthropic_client=AsyncAnthropic(
                api_key=credentials.api_key or "not-needed",
                base_url=base_url,
                max_retries=0,
                http_client=AnthropicAioHttpClient(timeout=settings.llm_timeout_seconds),
            )
        )
        model: Model = AnthropicModel(
            ref.name, provider=anthropic, profile=partial(_log_deprecation, ref.key)
        )
        return Built(model, _SdkConnections(anthropic))
    if provider.api == "google":
        from pydantic_ai.models.google import GoogleModel
        from pydantic_ai.providers.google import GoogleProvider

        google = GoogleProvider(api_key=credentials.api_key or "not-needed", base_url=base_url)
        model = GoogleModel(ref.name, provider=google, profile=partial(_log_deprecation, ref.key))
        return Built(model, _SdkConnections(google))
    assert base_url is not None  # the gateway refuses an OpenAI-compatible call without one
    connector = None
    if credentials.source == "tenant" and credentials.base_url:
        connector = guarded_connector(
            allow_private=settings.allow_private_urls,
            allowed_hosts=settings.allowed_private_hosts,
            limit=settings.llm_provider_concurrency,
        )
    client = ChatCompletionsClient(
        base_url,
        credentials.api_key,
        connector=connector,
        max_connections=settings.llm_provider_concurrency,
    )
    model = ChatCompletionsModel(
        ref.name, client, system=provider.id, native_json=provider.native_json
    )
    return Built(model, client)


def _log_deprecation(key: str, profile: ModelProfile) -> ModelProfile:
    """pydantic-ai warns (a Python warning) on every request to a model its provider
    deprecated. The catalogue, not pydantic-ai, decides which models a tenant may name, so
    the operator is told once in the log (pydantic-ai resolves a model's profile once, at
    its first request), and requests go on without the warning."""
    deprecation = profile.get("deprecation")
    if deprecation is None:
        return profile
    logger.warning(
        "model %s is deprecated by its provider (retirement date %s, replacement %s): %s",
        key,
        deprecation.retirement_date or "not given",
        deprecation.replacement or "not named",
        deprecation.source_url,
    )
    return {**profile, "deprecation": None}
