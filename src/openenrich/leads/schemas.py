"""The lead-pipelines surface's request bodies and answers, a section per part of the
reference. Field names are the reference's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Timestamp

# -- columns and templates -------------------------------------------------------------------

PROMPT_LIMIT = 20_000  # characters of a prompt template
MAX_OUTPUT_FIELDS = 50
COLUMN_TYPES = ("base", "ai", "multi_ai", "firecrawl")
ColumnType = Literal["base", "ai", "multi_ai", "firecrawl"]

OutputField = Annotated[str, Field(min_length=1, max_length=100)]


class AiTemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    prompt_template: str = Field(
        min_length=1,
        max_length=PROMPT_LIMIT,
        description="`{{field}}` placeholders: a lead field (`company`, `first_name`, …), "
        "`email`, or a custom-field key of your leads",
    )
    model: str = Field(min_length=1, max_length=200, examples=["gpt-4o-mini"])
    max_tokens: int | None = Field(default=None, ge=1, le=100_000)
    endpoint_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Only for a custom OpenAI-compatible deployment: its base URL",
    )


class MultiAiTemplateBody(AiTemplateBody):
    output_fields: list[OutputField] = Field(min_length=1, max_length=MAX_OUTPUT_FIELDS)


class FirecrawlTemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url_column: str = Field(min_length=1, max_length=200, examples=["company_website"])
    prompt: str = Field(min_length=1, max_length=PROMPT_LIMIT)
    output_fields: list[OutputField] = Field(min_length=1, max_length=MAX_OUTPUT_FIELDS)


class ColumnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(json_schema_extra={"enum": list(COLUMN_TYPES)})
    key: str | None = Field(default=None, max_length=200, description="base: the lead field")
    template_id: str | None = Field(default=None, max_length=100)
    # Read as an object and checked by the service, so that an inline multi-AI or
    # Firecrawl template is told what the reference says rather than a schema error.
    template: dict[str, Any] | None = Field(
        default=None, description="ai only: an AI template (as POST /v1/columns/ai-templates)"
    )
    field: str | None = Field(
        default=None, max_length=100, description="multi_ai, firecrawl: the output field"
    )


class AiTemplateOut(BaseModel):
    ai_column_template_id: str
    name: str
    prompt_template: str
    model: str
    provider: str
    endpoint_url: str | None
    max_tokens: int | None
    created_at: Timestamp


class MultiAiTemplateOut(BaseModel):
    multi_ai_id: str
    name: str
    output_fields: list[str]
    prompt_template: str
    model: str
    provider: str
    endpoint_url: str | None
    max_tokens: int | None
    created_at: Timestamp


class FirecrawlTemplateOut(BaseModel):
    firecrawl_id: str
    name: str
    url_column: str
    prompt: str
    output_fields: list[str]
    created_at: Timestamp


class Pagination(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


class AiTemplateList(BaseModel):
    data: list[AiTemplateOut]
    pagination: Pagination


class MultiAiTemplateList(BaseModel):
    data: list[MultiAiTemplateOut]
    pagination: Pagination


class FirecrawlTemplateList(BaseModel):
    data: list[FirecrawlTemplateOut]
    pagination: Pagination


class ColumnOut(BaseModel):
    column_id: str
    pipeline_id: str
    type: ColumnType
    key: str | None
    template_id: str | None
    field: str | None
    custom_field_key: str | None = Field(
        description="Where enrichment writes this column's values in `lead_custom_fields` "
        "(null for a base column)"
    )
    created_at: Timestamp


# -- lead jobs (enrichment and validation) ---------------------------------------------------

LeadJobStatus = Literal["PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"]
MAX_LEAD_IDS = 10_000  # lead_ids in one request


class LeadJobProgress(BaseModel):
    """What every lead job's progress shows; each family adds its own fields."""

    job_id: str
    status: LeadJobStatus
    progress_percentage: float
    processed_leads: int
    total_leads: int
    failed_leads: int
    completed_lead_ids: list[str]
    failed_lead_ids: list[str]
    lead_errors: dict[str, str] = Field(description="Per failed lead id, why it failed")
    lead_ids_truncated: bool = Field(
        description="true when the lists hold only the first ids (10,000 of each)"
    )


class LeadJobRecord(BaseModel):
    job_id: str
    pipeline_id: str | None
    status: LeadJobStatus
    progress_percentage: float
    processed_leads: int
    total_leads: int
    failed_leads: int
    config: dict[str, Any]
    error: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None


# -- enrichment jobs ---------------------------------------------------------------------------

ENRICHMENT_TYPES = ("AI_COLUMN", "MULTI_AI_COLUMN", "FIRECRAWL_EXTRACT")


class FirecrawlExtractConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url_column: str = Field(min_length=1, max_length=200, examples=["company_website"])
    prompt: str = Field(min_length=1, max_length=PROMPT_LIMIT)
    output_fields: list[OutputField] = Field(min_length=1, max_length=MAX_OUTPUT_FIELDS)


class EnrichmentStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline_id: str | None = Field(default=None, max_length=100)
    lead_ids: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=MAX_LEAD_IDS
    )
    limit: int | None = Field(default=None, ge=1, le=1_000_000)
    # Any value, checked by the service: whatever is wrong with it, the reference's answer
    # is `invalid enrichment_type`.
    enrichment_type: Any = Field(
        default=None, json_schema_extra={"type": "string", "enum": list(ENRICHMENT_TYPES)}
    )
    ai_template_id: str | None = Field(default=None, max_length=100)
    multi_ai_template_id: str | None = Field(default=None, max_length=100)
    firecrawl_extract_config: FirecrawlExtractConfig | None = None


class EnrichmentProgress(LeadJobProgress):
    enrichment_type: str


class EnrichmentJob(LeadJobRecord):
    enrichment_type: str


# -- validation jobs ---------------------------------------------------------------------------

VALIDATION_SERVICES = ("BOUNCEBAN", "MAILVERI", "HYBRID")


class ValidationStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline_id: str | None = Field(default=None, max_length=100)
    lead_ids: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=MAX_LEAD_IDS
    )
    limit: int | None = Field(default=None, ge=1, le=1_000_000)
    # Any value, checked by the service, which names the services in its 400.
    service: Any = Field(
        default=None, json_schema_extra={"type": "string", "enum": list(VALIDATION_SERVICES)}
    )
    force: bool = Field(
        default=False, description="Validate again leads that already have a status"
    )


class ValidationCounts(BaseModel):
    """Definitive outcomes only: UNKNOWN is counted in processed_leads and unknown_leads,
    never in valid, invalid or risky; skipped leads (already validated) in skipped_leads."""

    valid_leads: int
    invalid_leads: int
    risky_leads: int
    unknown_leads: int
    skipped_leads: int


class ValidationProgress(ValidationCounts, LeadJobProgress):
    service: str


class ValidationJob(ValidationCounts, LeadJobRecord):
    service: str
