"""Provider keys (`/v1/settings/api-keys…`, also `/api/settings/api-keys…`) and the model
options entity enrichment offers (`/api/enrichment/options`).

Each path answers in its surface's error body: `{"error": …}` under /v1, `{"detail": …}`
under /api.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from openenrich.errors import BadRequest, Forbidden
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.llm import keys
from openenrich.llm.gateway import Gateway
from openenrich.llm.schemas import (
    ConfiguredProviderKey,
    EnrichmentOptions,
    KeyBody,
    ModelOption,
    ProviderKeyDeleted,
    ProviderKeyList,
    ServerProviderKey,
    TenantProviderKey,
)
from openenrich.tenancy.dependencies import CurrentPrincipal
from openenrich.tenancy.roles import Role
from openenrich.tenancy.tenant import Principal

router = APIRouter(tags=["provider keys"], route_class=JSONRoute)

# Entity enrichment's strategies (reference 002 names `multi_expertise`; the job takes
# these ids as `strategy`).
STRATEGIES = [
    {
        "id": "single_pass",
        "name": "Single pass",
        "description": "Each model fills the whole schema in one call.",
    },
    {
        "id": "multi_expertise",
        "name": "Multi-expertise",
        "description": "Each model fills the schema one expertise group at a time (the "
        "schema's x-expertise), each call with its group's fields and instructions; the "
        "parts are merged into one object.",
    },
]
LANGUAGES = [
    {"code": code, "name": name}
    for code, name in (
        ("en", "English"), ("de", "German"), ("fr", "French"), ("es", "Spanish"),
        ("it", "Italian"), ("pt", "Portuguese"), ("nl", "Dutch"), ("pl", "Polish"),
        ("sv", "Swedish"), ("da", "Danish"), ("fi", "Finnish"), ("no", "Norwegian"),
        ("cs", "Czech"), ("tr", "Turkish"), ("ru", "Russian"), ("ar", "Arabic"),
        ("hi", "Hindi"), ("ja", "Japanese"), ("ko", "Korean"), ("zh", "Chinese"),
    )
]  # fmt: skip


async def member_or_admin(principal: CurrentPrincipal) -> Principal:
    if principal.role is Role.READ:
        raise Forbidden("Provider keys need an admin or member API key")
    return principal


Writer = Annotated[Principal, Depends(member_or_admin)]


def _gateway(request: Request) -> Gateway:
    return app_state(request).get(Gateway)


def _key_name(gateway: Gateway, provider: str) -> str:
    if provider.upper() == keys.FIRECRAWL:
        return keys.FIRECRAWL
    return gateway.catalogue.provider_for_key_name(provider).key_name


async def put_key(
    provider: str, body: KeyBody, request: Request, principal: Writer, session: DbSession
) -> ConfiguredProviderKey:
    gateway = _gateway(request)
    key_name = _key_name(gateway, provider)
    any_model = key_name == "OPENAI_COMPATIBLE"
    if not body.api_key.strip() and not (any_model and body.base_url):
        raise BadRequest("api_key is required")
    settings = app_state(request).settings
    row = await keys.put_key(
        session,
        gateway.box,
        principal.tenant,
        key_name,
        body.api_key.strip(),
        body.base_url,
        allow_private=settings.allow_private_urls,
        allowed_hosts=settings.allowed_private_hosts,
    )
    gateway.forget_credentials(principal.tenant)
    return ConfiguredProviderKey.model_validate(row)


async def list_keys(request: Request, principal: Writer, session: DbSession) -> ProviderKeyList:
    gateway = _gateway(request)
    settings = app_state(request).settings
    stored = [
        TenantProviderKey.model_validate(row)
        for row in await keys.list_keys(session, principal.tenant)
    ]
    mine = {entry.provider for entry in stored}
    names = [p.key_name for p in gateway.catalogue.providers.values()] + [keys.FIRECRAWL]
    server = [
        ServerProviderKey(provider=name)
        for name in names
        if name not in mine and any(settings.provider_fallback(name))
    ]
    return ProviderKeyList(api_keys=[*stored, *server])


async def delete_key(
    provider: str, request: Request, principal: Writer, session: DbSession
) -> ProviderKeyDeleted:
    gateway = _gateway(request)
    key_name = _key_name(gateway, provider)
    await keys.delete_key(session, principal.tenant, key_name)
    gateway.forget_credentials(principal.tenant)
    return ProviderKeyDeleted(provider=key_name)


for prefix in ("/v1/settings/api-keys", "/api/settings/api-keys"):
    router.add_api_route(
        prefix + "/{provider}",
        put_key,
        methods=["PUT"],
        summary="Store (or replace) the organisation's key for a provider; encrypted at rest",
    )
    router.add_api_route(
        prefix, list_keys, methods=["GET"], summary="Providers with a key (prefix only)"
    )
    router.add_api_route(
        prefix + "/{provider}", delete_key, methods=["DELETE"], summary="Remove a provider key"
    )


@router.get(
    "/api/enrichment/options",
    tags=["entity enrichment"],
    summary="Available models (composite keys provider::model), languages and strategies",
)
async def options(
    request: Request, principal: CurrentPrincipal, session: DbSession
) -> EnrichmentOptions:
    gateway = _gateway(request)
    settings = app_state(request).settings
    configured = {row.provider for row in await keys.list_keys(session, principal.tenant)}
    models: list[ModelOption] = []
    for provider in gateway.catalogue.providers.values():
        ready = provider.key_name in configured or any(
            settings.provider_fallback(provider.key_name)
        )
        for name in provider.models:
            models.append(
                ModelOption(
                    key=f"{provider.id}::{name}",
                    provider=provider.id,
                    provider_name=provider.label,
                    model=name,
                    configured=ready,
                )
            )
    return EnrichmentOptions(
        models=models,
        custom_models="openai_compatible::<model> reaches the OpenAI-compatible server "
        "configured for OPENAI_COMPATIBLE",
        languages=LANGUAGES,
        strategies=STRATEGIES,
    )
