"""Request bodies and answers of /destinations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Timestamp


class Batching(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_events: int = Field(default=1000, ge=1, le=100_000, description="Events per request")
    max_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Bytes per request"
    )
    max_seconds: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="How long a small batch may wait for more before it is sent (0: at once)",
    )


class DestinationBody(BaseModel):
    """Create: `destination_id`, `type` and `config` required. Update: `config` replaces the
    stored one (a secret left out, or given back masked, keeps its stored value)."""

    model_config = ConfigDict(extra="forbid")

    destination_id: str | None = Field(default=None, max_length=128)
    type: str | None = Field(default=None, max_length=32)
    config: dict[str, Any] | None = None
    batching: Batching | None = None


class DeliveryState(BaseModel):
    pending_batches: int
    pending_events: int
    delivered_batches: int
    delivered_events: int
    dead_batches: int
    dead_events: int
    last_error: str | None
    last_error_at: Timestamp | None
    last_delivered_at: Timestamp | None
    next_attempt_at: Timestamp | None = Field(description="While batches are pending")


class DestinationOut(BaseModel):
    destination_id: str
    type: str
    builtin: bool = False
    config: dict[str, Any] = Field(description='Secrets are masked: "****abcd"')
    batching: Batching | None
    delivery: DeliveryState | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


class CreatedDestination(DestinationOut):
    signing_secret: str | None = Field(
        default=None, description="http type: the signing secret (whsec_…), shown this once"
    )


class DestinationList(BaseModel):
    destinations: list[DestinationOut]


class DestinationDeleted(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    destination_id: str
    deleted: Literal[True] = True


class BatchOut(BaseModel):
    batch_id: str
    stream_id: str
    name: str
    rows: int
    bytes: int
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    last_error: str | None
    created_at: Timestamp
    delivered_at: Timestamp | None


class BatchList(BaseModel):
    destination_id: str
    batches: list[BatchOut]


class Retried(BaseModel):
    destination_id: str
    retried: int = Field(description="Dead batches put back in the queue")
