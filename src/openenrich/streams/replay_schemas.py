"""The replay routes' request body and answer (the answer is a dict the service builds;
this model describes it for /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

DateText = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]


class ReplayBody(BaseModel):
    """`from` and `to` are checked by the service, for the reference's 400s."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Any = Field(default=None, alias="from", description="First day (YYYY-MM-DD)")
    to: Any = Field(default=None, description="Last day (YYYY-MM-DD), included")
    webhook_url: Any = None


class ReplayError(BaseModel):
    code: str
    message: str


class ReplayOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    replay_id: str = Field(examples=["rpl_3x7c1k9q2m4v8b6n"])
    status: Literal["started", "running", "completed", "failed", "cancelled"] = Field(
        description="`started` until a worker takes it"
    )
    stream_id: str
    from_: DateText = Field(alias="from")
    to: DateText
    estimated_events: int = Field(description="Events of those days in the lake when it began")
    webhook_url: str
    events_sent: int
    batches_sent: int
    created_at: str
    finished_at: str | None
    error: ReplayError | None = Field(
        description="Why it failed: which batch, how often it was refused, and how far it got"
    )
    webhook_secret: str | None = Field(
        default=None,
        description="The secret its batches are signed with (Standard Webhooks, `whsec_…`): "
        "in the answer to the request that started it only",
    )
