"""The saved-schema routes' bodies and answers (/api/schema/saved…).

A schema's JSON Schema travels as `json_schema` both ways. Lengths and the schema's own
rules are checked by `schema_store`, which says what is wrong in one `detail`; the models
here only refuse unknown fields and wrong types.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Timestamp

EXAMPLE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "legal_name": {"type": "string", "x-expertise": "company_profile"},
        "founded_year": {"type": ["integer", "null"], "x-expertise": "company_profile"},
        "annual_revenue_usd": {"type": ["number", "null"], "x-expertise": "financials"},
    },
    "required": ["legal_name"],
}


class SchemaBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["Pharma companies"], description="1 to 200 characters")
    entity_type: str = Field(
        examples=["company"],
        description="company, person, product, … (free text, stored lower-case, 1 to 64 "
        "characters)",
    )
    description: str | None = Field(default=None, description="At most 10,000 characters")
    json_schema: dict[str, Any] = Field(
        examples=[EXAMPLE_SCHEMA],
        description="A draft 2020-12 JSON Schema of an object with properties; at most "
        "256 KB as JSON and 500 properties in all",
    )


class SchemaChanges(BaseModel):
    """A PUT: any of the fields; those left out keep their value (`description: null`
    clears it)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    entity_type: str | None = None
    description: str | None = None
    json_schema: dict[str, Any] | None = None


class SchemaOut(BaseModel):
    """A saved schema as it is now (its newest version)."""

    id: str
    name: str
    entity_type: str
    description: str | None
    version: int = Field(description="1 when created; every change adds one")
    json_schema: dict[str, Any]
    expertise_groups: dict[str, list[str]] = Field(
        description="Group name → its top-level properties: from `x-expertise`, or derived "
        "from the schema when no property has one"
    )
    created_at: Timestamp
    updated_at: Timestamp


class SchemaList(BaseModel):
    schemas: list[SchemaOut] = Field(description="Most recently changed first")


class SchemaDeleted(BaseModel):
    id: str
    deleted: bool = True
    versions_deleted: int


class VersionSummary(BaseModel):
    version: int
    name: str
    entity_type: str
    description: str | None
    change: str = Field(description="created, updated or ai_edit")
    note: str | None = Field(description="For an AI edit, the instruction")
    created_at: Timestamp


class VersionList(BaseModel):
    schema_id: str
    versions: list[VersionSummary] = Field(description="Newest first")


class VersionOut(BaseModel):
    """One version as it was saved; records name the version they were made with."""

    schema_id: str
    version: int
    name: str
    entity_type: str
    description: str | None
    json_schema: dict[str, Any]
    expertise_groups: dict[str, list[str]]
    change: str = Field(description="created, updated or ai_edit")
    note: str | None = Field(description="For an AI edit, the instruction")
    created_at: Timestamp


# -- the schema jobs (answered with `JobStarted`, followed on /api/llm/stream/{job_id}) ----


def _model_field() -> Any:
    return Field(
        default=None,
        max_length=200,
        description="A provider::model key (GET /api/enrichment/options); when left out, "
        "the server's OPENENRICH_ENTITIES_DEFAULT_MODEL",
        examples=["anthropic::claude-sonnet-4-5-20250514"],
    )


class GenerateBody(BaseModel):
    """Samples to infer a schema from; a model to describe it; whether to save it."""

    model_config = ConfigDict(extra="forbid")

    samples: list[Any] = Field(
        description="1 to 50 sample entities, JSON objects",
        examples=[[{"name": "Moderna Inc", "country": "US", "founded": 2010}]],
    )
    model: str | None = _model_field()
    save: bool = Field(
        default=False,
        description="Save the result as a new saved schema (name and entity_type required)",
    )
    name: str | None = Field(default=None, description="With save: 1 to 200 characters")
    entity_type: str | None = Field(
        default=None, examples=["company"], description="With save: 1 to 64 characters"
    )
    description: str | None = Field(default=None, description="With save: at most 10,000")


class PromptBody(BaseModel):
    """An instruction in plain language to edit a saved schema with."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        description="At most 4,000 characters",
        examples=["Add the number of employees, as an integer, in the company_profile group"],
    )
    model: str | None = _model_field()
