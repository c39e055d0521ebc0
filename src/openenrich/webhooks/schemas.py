from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openenrich.json_output import Timestamp
from openenrich.webhooks.models import WebhookDelivery


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048)
    event_types: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    is_active: bool | None = None


# -- answers -------------------------------------------------------------------------------


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    event_types: list[str] | None = Field(description="null: every event type")
    description: str
    is_active: bool
    disabled_reason: str | None
    created_at: Timestamp
    updated_at: Timestamp


class CreatedEndpoint(EndpointOut):
    secret: str = Field(description="The signing secret. Shown once: at creation.")


class EndpointDeleted(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str
    deleted: Literal[True] = True


class DeliveryOut(BaseModel):
    id: str
    event_id: str = Field(description="The Webhook-Id header")
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: Timestamp | None = Field(description="While pending")
    created_at: Timestamp
    delivered_at: Timestamp | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=delivery.status,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
        )
