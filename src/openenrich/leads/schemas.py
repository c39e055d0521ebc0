"""The lead-pipelines surface's bodies and answers, a section per part of the reference.

Field names are the reference's (`pipeline_…`, `lead_…`). The upload's and the listing's
answers are written with orjson from plain values (thousands of rows per answer: pydantic
per row would cost more than the database); their models here describe them.
"""

from __future__ import annotations

from typing import Any, Literal

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
