from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Timestamp


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(default="", max_length=1000)
    base_url: str | None = Field(default=None, max_length=2048)


# -- answers -------------------------------------------------------------------------------


class ProviderKeyOut(BaseModel):
    """A stored provider key, shown by its prefix only."""

    model_config = ConfigDict(from_attributes=True)

    provider: str = Field(description="The key's name: OPENAI, ANTHROPIC, FIRECRAWL, …")
    key_prefix: str = Field(description="Enough of the key to recognise it (empty: none)")
    base_url: str | None
    created_at: Timestamp
    updated_at: Timestamp


class ConfiguredProviderKey(ProviderKeyOut):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    configured: Literal[True] = True


class TenantProviderKey(ProviderKeyOut):
    """A key the organisation stored."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    source: Literal["tenant"] = "tenant"


class ServerProviderKey(BaseModel):
    """A provider the server has a key for (`OPENENRICH_PROVIDER_<NAME>_API_KEY`)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    provider: str
    key_prefix: None = None
    base_url: None = None
    source: Literal["server"] = "server"


class ProviderKeyList(BaseModel):
    api_keys: list[
        Annotated[TenantProviderKey | ServerProviderKey, Field(discriminator="source")]
    ] = Field(description="The organisation's keys, then providers only the server has a key for")


class ProviderKeyDeleted(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    provider: str
    deleted: Literal[True] = True


class ModelOption(BaseModel):
    key: str = Field(description="provider::model")
    provider: str
    provider_name: str
    model: str
    configured: bool = Field(
        description="Whether a key (the organisation's or the server's) is there"
    )


class Language(BaseModel):
    code: str
    name: str


class Strategy(BaseModel):
    id: str
    name: str
    description: str


class EnrichmentOptions(BaseModel):
    models: list[ModelOption]
    custom_models: str
    languages: list[Language]
    strategies: list[Strategy]
