"""The lead-pipelines surface's bodies and answers, a section per part of the reference.

Field names are the reference's (`pipeline_…`, `lead_…`). The upload's and the listing's
answers are written with orjson from plain values (thousands of rows per answer: pydantic
per row would cost more than the database); their models here describe them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Timestamp

# -- pipelines -----------------------------------------------------------------------------


class PipelineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline_name: str = Field(max_length=200, examples=["Q3 outbound"])
    pipeline_description: str | None = Field(
        default=None, max_length=10_000, examples=["SaaS leads from Apollo"]
    )
    pipeline_color: str | None = Field(default=None, max_length=32, examples=["#8B5CF6"])


class PipelineOut(BaseModel):
    """A pipeline with its stats, which the writes that change them keep up to date."""

    pipeline_id: str
    pipeline_name: str
    pipeline_description: str | None
    pipeline_color: str | None
    pipeline_created_at: Timestamp
    pipeline_updated_at: Timestamp
    total_leads: int
    imported_leads: int
    validated_leads: int
    enriched_leads: int
    valid_emails: int
    invalid_emails: int
    risky_emails: int
    unknown_emails: int


class Pagination(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


class PipelineList(BaseModel):
    data: list[PipelineOut] = Field(description="Newest first")
    pagination: Pagination


# -- leads: upload -------------------------------------------------------------------------


class LeadIn(BaseModel):
    """One lead of an upload. Only `email` is required; the other fields are strings (or
    null), stored as sent; `custom_fields` is any JSON object."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(examples=["ada@example.com"])
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    phone: str | None = None
    linkedin_url: str | None = None
    company_website: str | None = None
    company_description: str | None = None
    company_size: str | None = None
    industry: str | None = None
    location: str | None = None
    custom_fields: dict[str, Any] | None = None


class UploadRow(BaseModel):
    """What became of one row of the upload, in the order sent."""

    index: int = Field(description="The row's position in the uploaded array, from 0")
    status: Literal["created", "skipped", "failed", "dropped"] = Field(
        description="created; skipped (the address is already in your account, or earlier "
        "in this batch); failed (see reason); dropped (past the plan's lead quota)"
    )
    email: str | None = Field(default=None, description="As sent, when it was a string")
    lead_id: str | None = Field(default=None, description="For created rows")
    pipeline_lead_id: str | None = Field(default=None, description="For created rows")
    reason: str | None = Field(default=None, description="For rows not created")


class UploadOut(BaseModel):
    pipeline_id: str
    received: int = Field(description="Rows in the request")
    created: int
    skipped: int
    failed: int
    dropped: int = Field(description="Rows cut off by the plan's lead quota")
    total_leads: int = Field(description="The pipeline's leads after this upload")
    current_count: int = Field(description="Your account's leads after this upload")
    quota_limit: int | None = Field(description="Your plan's lead quota; null: unlimited")
    rows: list[UploadRow]


# -- leads: listing ------------------------------------------------------------------------


class LeadOut(BaseModel):
    lead_id: str
    lead_email: str
    lead_first_name: str | None
    lead_last_name: str | None
    lead_company: str | None
    lead_title: str | None
    lead_phone: str | None
    lead_linkedin_url: str | None
    lead_company_website: str | None
    lead_company_description: str | None
    lead_company_size: str | None
    lead_industry: str | None
    lead_location: str | None
    lead_custom_fields: dict[str, Any] = Field(
        description="As uploaded, plus what enrichment wrote (`{template_name}`, …)"
    )
    lead_enrichment_status: Literal["NOT_ENRICHED", "ENRICHED", "FAILED"]
    lead_created_at: Timestamp
    lead_updated_at: Timestamp


class PipelineLeadOut(BaseModel):
    pipeline_lead_id: str
    pipeline_lead_stage: str
    pipeline_lead_email_validation_status: Literal["VALID", "INVALID", "RISKY", "UNKNOWN"] | None
    pipeline_lead_email_validation: dict[str, Any] | None = Field(
        description="The last validation's observations (syntax, mx, smtp, …); null until validated"
    )
    pipeline_lead_created_at: Timestamp
    lead: LeadOut


class LeadPagination(BaseModel):
    limit: int
    offset: int | None = Field(description="null on a page asked for with `after`")
    total: int = Field(description="The pipeline's leads")
    has_more: bool
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page (keyset: stable while leads are "
        "added); null on the last page"
    )


class LeadPage(BaseModel):
    data: list[PipelineLeadOut] = Field(
        description="Newest first: pipeline_lead_created_at, then pipeline_lead_id, descending"
    )
    pagination: LeadPagination


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


class ColumnList(BaseModel):
    data: list[ColumnOut] = Field(description="In the order they were added")


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
