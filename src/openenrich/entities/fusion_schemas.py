"""The body and the answer of POST /api/fusion/merge.

`FusedRecord` is a record as the records API will show it, with the schema's verdict on
the fused object besides (`valid`, `validation_errors`); at merge with the records API its
record fields become that API's model (`GET /api/records/{id}`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Number, Timestamp


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


class FusedRecord(BaseModel):
    id: str
    type: str
    job_id: str | None
    entity_index: int | None
    entity_data: dict[str, Any]
    entity_name: str | None
    schema_id: str | None
    schema_version: int | None
    model: str
    models: list[str]
    arbitration_model: str | None
    strategy: str | None
    structured_output: dict[str, Any]
    fusion: dict[str, Any] | None = Field(
        description="Per field (dotted paths for nested objects): value, candidates "
        "[{value, normalized, originals, models}], agreed, confidence, decided_by "
        "(single, majority, arbiter, plurality, none), tie"
    )
    input_tokens: int
    output_tokens: int
    cost: Number
    started_at: Timestamp | None
    completed_at: Timestamp | None
    duration_ms: int | None
    created_at: Timestamp
    valid: bool = Field(description="Whether structured_output validates against the schema")
    validation_errors: list[str] = Field(description="Where it does not: `path: message`")
