"""The streams surface's request bodies and answers.

Most answers are built from these models. Four are only described by them, for
/openapi.json: the ingest answers (a small dict on the hottest path, written with orjson),
the dead letters and the query's JSON answer (each holds JSON as the client or the query
process wrote it, passed on as bytes)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from openenrich.json_output import Timestamp


class StreamBody(BaseModel):
    """Create: `stream_id` required. Update: any subset of the fields."""

    model_config = ConfigDict(extra="forbid")

    stream_id: Any = None
    fields: Any = None
    template: Any = None
    schema_mode: Any = None
    pipeline: Any = None
    webhook_url: Any = None


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(max_length=100_000)


# -- ingest (described only) ---------------------------------------------------------------


class IngestAccepted(BaseModel):
    accepted: int
    buffered: int = Field(description="Events of the stream waiting for the next flush")
    rejected: int = Field(
        default=0, description="Events strict mode sent to the dead-letter queue; absent if none"
    )


class EnvelopesAccepted(BaseModel):
    status: Literal["accepted"]
    ingested_bytes: int
    stream_id: str | None
    rejected: int = Field(
        default=0, description="Events strict mode sent to the dead-letter queue; absent if none"
    )


# -- configuration -------------------------------------------------------------------------


class StreamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    stream_id: str
    schema_mode: Literal["strict", "evolve", "flex"]
    template: str | None
    fields: dict[str, dict[str, Any]] | None = Field(
        description='Declared fields: `{"name": {"type": …, "required": false?}}`'
    )
    pipeline: list[dict[str, Any]] | None = Field(
        default=None, description="Processing steps, in order (see docs/streams.md)"
    )
    webhook_url: str | None = Field(
        default=None, description="Where flushed events are forwarded (null: nowhere)"
    )
    created_at: Timestamp


class StreamSaved(StreamOut):
    """The answer to a create or update (described only: routes.py leaves the secret out
    when there is none to show)."""

    webhook_secret: str = Field(
        default="",
        description="The forwarding's signing secret (`whsec_…`): only in the answer to the "
        "create or update that started forwarding, and absent otherwise",
    )


class StreamList(BaseModel):
    streams: list[StreamOut]


class StreamDeleted(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    stream_id: str
    deleted: Literal[True] = True


class FlushedFileOut(BaseModel):
    path: str = Field(description="Where users read the file: a path or an s3:// URL")
    kind: Literal["data", "dlq"]
    date: dt.date
    rows: int
    bytes: int


class Flushed(BaseModel):
    stream_id: str
    files: list[FlushedFileOut]


# -- dead letters (described only) and schema history ---------------------------------------


class DeadLetter(BaseModel):
    rejected_at: Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
    reason: str = Field(description="missing_field, extra_field or type_mismatch")
    field: str | None
    original: Any = Field(description="The event as the client sent it")


class DeadLetters(BaseModel):
    stream_id: str
    dlq_count: int
    events: list[DeadLetter] = Field(description="Newest first")


class SchemaEventOut(BaseModel):
    type: Literal["new_field", "type_change", "missing_field"]
    field: str
    # Absent (not null) where they do not apply: the route leaves out None.
    previous_type: str | SkipJsonSchema[None] = Field(default=None, description="type_change only")
    detected_type: str | SkipJsonSchema[None] = None
    detected_at: Timestamp
    event_count: int


class SchemaEvents(BaseModel):
    stream_id: str
    schema_events: list[SchemaEventOut]


# -- reports -------------------------------------------------------------------------------


class UsageDay(BaseModel):
    date: dt.date
    stream_id: str
    event_count: int
    bytes_stored: int
    file_count: int


class UsageTotals(BaseModel):
    event_count: int
    bytes_stored: int
    file_count: int


class StreamsUsage(BaseModel):
    usage: list[UsageDay] = Field(description="Newest day first")
    totals: UsageTotals


class MinuteCounts(BaseModel):
    minute: str = Field(examples=["2026-02-05T18:04"])
    events: int
    requests: int
    errors: int


class HourCounts(BaseModel):
    hour: str = Field(examples=["2026-02-05T18"])
    events: int
    requests: int
    errors: int


class LiveStats(BaseModel):
    status: Literal["ok", "idle"] = Field(description="idle: no ingest in the last 5 minutes")
    customer_id: str
    hour: str = Field(examples=["2026-02-05T18"])
    requests: int
    events: int
    errors: int
    histogram: list[MinuteCounts] = Field(description="The last 60 minutes, oldest first")
    hourly: list[HourCounts] = Field(description="The last 24 hours, oldest first")


class IngestErrorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: Literal["validation", "schema_rejection", "rate_limit", "processing"]
    message: str
    endpoint: str
    stream_id: str | None
    request_body: str | None
    created_at: Timestamp


class IngestErrors(BaseModel):
    customer_id: str
    errors_24h: int
    by_type: dict[str, int] = Field(
        description="The last 24 hours: validation, schema_rejection, rate_limit, processing"
    )
    recent: list[IngestErrorOut] = Field(description="Newest first")


# -- connect and query ---------------------------------------------------------------------


class LocalSQL(BaseModel):
    duckdb: str
    clickhouse: str = Field(description="For `clickhouse local`, which reads any path")
    python: str


class LocalConnection(BaseModel):
    storage: Literal["local"]
    path: str
    example_path: str
    sql: LocalSQL


class S3SQL(BaseModel):
    duckdb: str
    clickhouse: str
    python: str


class S3Connection(BaseModel):
    storage: Literal["s3"]
    endpoint: str
    bucket: str
    prefix: str
    access_key_id: str | None
    secret_access_key: str | None
    region: str
    egress_cost: None
    example_path: str
    sql: S3SQL


Connection = Annotated[LocalConnection | S3Connection, Field(discriminator="storage")]


class QueryColumn(BaseModel):
    name: str
    type: str = Field(description="The Arrow type")


class QueryAnswer(BaseModel):
    columns: list[QueryColumn]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    truncated_by: Literal["rows", "bytes"] | None


# -- templates -----------------------------------------------------------------------------


class TemplateField(BaseModel):
    name: str
    type: str


class TemplateOutput(BaseModel):
    name: str
    type: str
    description: str


class TemplateEnricher(BaseModel):
    enricher: str
    options: dict[str, Any]


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    fields: list[TemplateField] = Field(description="The event fields the template reads")
    enrichers: list[TemplateEnricher]
    outputs: list[TemplateOutput] = Field(description="The columns the template adds")
    builtin: bool


class TemplateList(BaseModel):
    templates: list[TemplateOut]


class TemplateBody(BaseModel):
    """Create: `id` and `enrichers` required. Update: any subset."""

    model_config = ConfigDict(extra="forbid")

    id: Any = None
    name: Any = None
    description: Any = None
    fields: Any = None
    enrichers: Any = None


class TemplateDeleted(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str
    deleted: Literal[True] = True
