"""The entity surface's bodies and answers for jobs, enrichment and records (reference 002).

Costs are USD, written as JSON numbers (`json_output.Number`); a job's `total_cost` is the
exact sum of its records' `cost`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Number, Timestamp

# -- jobs ------------------------------------------------------------------------------------

JobStatus = Literal["queued", "running", "paused", "completed", "failed", "cancelled"]


class JobOut(BaseModel):
    """A job of this surface: enrichment (single or batch), schema generation or edit,
    fusion. `paused` is a job waiting for `POST /api/llm/continue/{job_id}`."""

    job_id: str
    kind: str = Field(description="enrichment, schema_generation, schema_edit or fusion")
    status: JobStatus
    schema_id: str | None
    schema_version: int | None
    models: list[str]
    strategy: str | None
    arbitration_model: str | None
    total_entities: int
    completed_entities: int
    failed_entities: int
    total_cost: Number = Field(description="USD: the exact sum of the job's records' costs")
    paused: dict[str, Any] | None = Field(
        description="Why the job is paused (entity_index, reason), while it is"
    )
    error: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None


class JobStarted(BaseModel):
    job_id: str


class BatchStarted(BaseModel):
    job_id: str
    count: int = Field(description="Entities in the batch")


# -- enrichment ------------------------------------------------------------------------------

Strategy = Literal["single_pass", "multi_expertise"]


class EnrichmentOptions(BaseModel):
    """What every enrichment request says besides its entities."""

    schema_id: str = Field(max_length=64)
    models: list[str] = Field(
        min_length=1,
        max_length=8,
        description="provider::model keys (GET /api/enrichment/options); each fills the schema",
        examples=[["anthropic::claude-sonnet-4-5-20250514"]],
    )
    strategy: Strategy = "single_pass"
    arbitration_model: str | None = Field(
        default=None,
        max_length=200,
        description="With several models: the model asked to settle the fields they disagree on",
    )
    language: str | None = Field(
        default=None, max_length=8, description="A language code from /api/enrichment/options"
    )
    instructions: str | None = Field(
        default=None, max_length=4000, description="Added to every prompt of the job"
    )
    skip_classification: bool = Field(
        default=False,
        description="Do not check that each entity is of the schema's entity type first",
    )


class SingleEnrichment(EnrichmentOptions):
    entity_data: dict[str, Any] = Field(examples=[{"name": "Moderna Inc", "country": "US"}])


class BatchEnrichment(EnrichmentOptions):
    entities: list[dict[str, Any]] = Field(min_length=1)


class BatchFetch(BaseModel):
    url: str = Field(max_length=2048)
    format: Literal["csv", "json", "ndjson"] | None = Field(
        default=None, description="Sniffed from the content type and the content when absent"
    )
    start: bool = Field(default=False, description="Start a batch with the entities fetched")
    # The enrichment options, required with `start`.
    schema_id: str | None = Field(default=None, max_length=64)
    models: list[str] | None = Field(default=None, min_length=1, max_length=8)
    strategy: Strategy = "single_pass"
    arbitration_model: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=8)
    instructions: str | None = Field(default=None, max_length=4000)
    skip_classification: bool = False


class FetchedEntities(BaseModel):
    entities: list[dict[str, Any]]
    count: int


# -- records ---------------------------------------------------------------------------------

RecordType = Literal["enrichment", "fusion"]


class RecordSummary(BaseModel):
    id: str
    type: RecordType
    job_id: str | None
    entity_index: int | None
    entity_name: str | None
    schema_id: str | None
    schema_version: int | None
    model: str = Field(description='provider::model, or "fusion" for a fused record')
    models: list[str]
    arbitration_model: str | None
    strategy: str | None
    input_tokens: int
    output_tokens: int
    cost: Number
    started_at: Timestamp | None
    completed_at: Timestamp | None
    duration_ms: int | None
    created_at: Timestamp


class RecordOut(RecordSummary):
    entity_data: dict[str, Any]
    structured_output: dict[str, Any]
    fusion: dict[str, Any] | None = Field(
        description="A fused record's per-field account: value, candidates, agreeing models, "
        "confidence, and how it was decided"
    )


class RecordList(BaseModel):
    records: list[RecordSummary] = Field(description="Newest first")
    total: int
    page: int
    page_size: int


class BatchDelete(BaseModel):
    ids: list[str]


class BatchDeleted(BaseModel):
    deleted: int = Field(description="Records deleted: ids not found (or another tenant's) count 0")


# -- POST /api/fusion/merge ------------------------------------------------------------------


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_ids: list[Annotated[str, Field(max_length=64)]] = Field(
        description="2 to 20 enrichment records of one entity, made with one schema version, "
        "each by a different model; ties are broken in this order",
        examples=[["9b2f…", "c41a…"]],
    )
    arbitration_model: str | None = Field(
        default=None,
        max_length=200,
        description="A provider::model key: asked to choose among the candidates of the "
        "fields without a majority. Without one, the most-supported value wins.",
        examples=["anthropic::claude-sonnet-4-5-20250514"],
    )


class FusedRecord(RecordOut):
    """The fused record, as `GET /api/records/{id}` shows it, with the schema's verdict on
    the fused object besides."""

    valid: bool = Field(description="Whether structured_output validates against the schema")
    validation_errors: list[str] = Field(description="Where it does not: `path: message`")
