from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow

# What a stream id may be (the column holds 128 characters).
STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class Stream(TenantMixin, Base):
    __tablename__ = "streams"
    __table_args__ = (UniqueConstraint("org_id", "environment", "stream_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(128))
    schema_mode: Mapped[str] = mapped_column(String(8), default="flex")
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    template: Mapped[str | None] = mapped_column(String(100))
    # Processing steps (streams/pipeline.py), as saved: checked, defaults filled in.
    pipeline: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Forwarding on flush (forwarding.py): the URL, and the webhook endpoint (its secret,
    # its delivery log) that delivers to it; no foreign key: the endpoint may be deleted
    # through /api/v1/webhooks, which ends the forwarding.
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_endpoint_id: Mapped[str | None] = mapped_column(String(40))
    # Bumped on every change: a batch is written with a stream's declared types only
    # when all of it was validated against the same version.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamTemplate(TenantMixin, Base):
    """A tenant's own enrichment template: a named list of enrichers with their options."""

    __tablename__ = "stream_templates"
    __table_args__ = (UniqueConstraint("org_id", "environment", "template_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{name, type}]: its inputs
    enrichers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{enricher, options}]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchemaField(TenantMixin, Base):
    """The schema an evolve-mode stream has been seen to have."""

    __tablename__ = "stream_schema_fields"
    __table_args__ = (
        UniqueConstraint(
            "org_id", "environment", "stream_id", "field", name="uq_stream_schema_fields_key"
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(128))
    field: Mapped[str] = mapped_column(String(256))
    type: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


SCHEMA_EVENT_KEY = (
    "org_id",
    "environment",
    "stream_id",
    "type",
    "field",
    "detected_type",
    "previous_type",
)


class SchemaEvent(TenantMixin, Base):
    """A detected schema change. `detected_type` and `previous_type` are "" when they do not
    apply (unique constraints treat NULLs as distinct on PostgreSQL)."""

    __tablename__ = "stream_schema_events"
    __table_args__ = (UniqueConstraint(*SCHEMA_EVENT_KEY, name="uq_stream_schema_events_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))  # new_field, type_change, missing_field
    field: Mapped[str] = mapped_column(String(256))
    detected_type: Mapped[str] = mapped_column(String(16), default="")
    previous_type: Mapped[str] = mapped_column(String(16), default="")
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)


class StatsMinute(TenantMixin, Base):
    """Ingest counters per tenant and minute (kept 48 hours)."""

    __tablename__ = "stream_stats"
    __table_args__ = (UniqueConstraint("org_id", "environment", "minute"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    minute: Mapped[datetime] = mapped_column()
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageMonth(TenantMixin, Base):
    """Events received per tenant and calendar month: what the monthly event limit counts."""

    __tablename__ = "stream_usage_months"
    __table_args__ = (UniqueConstraint("org_id", "environment", "month"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class IngestError(TenantMixin, Base):
    __tablename__ = "stream_errors"
    __table_args__ = (Index(None, "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream_id: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(
        String(20)
    )  # validation, schema_rejection, rate_limit, processing
    message: Mapped[str] = mapped_column(String(500))
    endpoint: Mapped[str] = mapped_column(String(64))
    request_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestKey(TenantMixin, Base):
    """An ingest request's Idempotency-Key (streams/idempotency.py): `pending` from before
    its events are logged until its answer is written here, `done` with that answer for
    24 hours. `node` is the log that holds the events (their records carry the key)."""

    __tablename__ = "ingest_keys"
    __table_args__ = (PrimaryKeyConstraint("org_id", "environment", "key"),)

    key: Mapped[str] = mapped_column(String(255))
    body_hash: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8))
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
