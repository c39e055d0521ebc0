from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from openenrich.json_output import Number, Payload, Timestamp
from openenrich.verify.report import REPORT_SCHEMA


class CreateRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=20_000)
    workflow: str | None = Field(default=None, max_length=100)
    thread_id: str | None = Field(default=None, max_length=40)
    stream: bool = False
    metadata: dict[str, Any] | None = None


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approved", "declined"]


class WorkflowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    content: str | None = Field(default=None, max_length=50_000)
    is_active: bool | None = None


# -- answers -------------------------------------------------------------------------------

RunStatus = Literal[
    "queued", "running", "requires_approval", "completed", "failed", "cancelled", "interrupted"
]


class RunInput(BaseModel):
    message: str
    workflow: str | None


class ToolCallStep(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: Literal["tool_call"] = "tool_call"
    name: str
    status: str
    id: str
    credits: Number


class ReportStep(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: Literal["report"] = "report"


class TextStep(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: Literal["text"] = "text"
    content: str


Step = Annotated[ToolCallStep | ReportStep | TextStep, Field(discriminator="type")]


class ToolCallOut(BaseModel):
    """One check the run made (a `queries.CALLS` row)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: str
    billed: bool
    credits: Number
    latency_ms: int | None


# The report's schema (without its `$schema`, which an OpenAPI document does not take), or
# null until the run completes.
_REPORT_OR_NULL = {
    "anyOf": [
        {key: value for key, value in REPORT_SCHEMA.items() if key != "$schema"},
        {"type": "null"},
    ]
}


class RunOut(BaseModel):
    """The run resource: every field of the reference's."""

    id: str
    thread_id: str
    status: RunStatus
    input: RunInput
    answer: str | None
    steps: list[Step]
    report: Annotated[Payload, WithJsonSchema(_REPORT_OR_NULL)] = Field(
        description="The structured report, when completed (docs/verification.md)"
    )
    report_url: str | None = Field(
        description="A signed link to the report as a PDF, minted afresh on every read"
    )
    plan: Payload = Field(description="Shown while the run requires approval")
    error: Payload
    credits_used: Number = Field(description="What the run's billed checks cost")
    tool_calls: list[ToolCallOut]
    metadata: Payload
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None


class ThreadRuns(BaseModel):
    thread_id: str
    runs: list[RunOut]
    limit: int
    offset: int
    total: int


class RunList(BaseModel):
    runs: list[RunOut] = Field(description="Newest first")
    limit: int
    offset: int
    total: int


class WorkflowOut(BaseModel):
    slug: str
    name: str
    description: str
    scope: Literal["built-in", "org"]
    is_active: bool
    checks: list[str]


class WorkflowDetail(WorkflowOut):
    content: str = Field(description="The Markdown procedure, with its front matter")


class Usage(BaseModel):
    credits_used: Number
    credits_remaining: Number | None
    max_credits: Number | None
