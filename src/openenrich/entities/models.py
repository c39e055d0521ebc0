"""Entity enrichment's tables: saved schemas and their versions, the jobs (with one item
per entity), and the records every model result and every fused result becomes.

Records keep the schema's id and version without a foreign key: a record outlives the
schema it was made with (deleting a schema deletes its versions, never its records).
Costs are USD as `Numeric(18, 8)`, the gateway's own precision, so a job's total is the
exact sum of its records'.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow

UUID_LENGTH = 36
MODEL_LENGTH = 200  # a `provider::model` key
Money = Numeric(18, 8)


class EntitySchema(TenantMixin, Base):
    """A saved schema as it is now: its newest version, copied here for listing."""

    __tablename__ = "entity_schemas"
    __table_args__ = (Index(None, "org_id", "environment", "updated_at"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EntitySchemaVersion(Base):
    """Every version a schema had: each change (a PUT, an AI edit) adds one."""

    __tablename__ = "entity_schema_versions"
    __table_args__ = (PrimaryKeyConstraint("schema_id", "version"),)

    schema_id: Mapped[str] = mapped_column(
        String(UUID_LENGTH), ForeignKey("entity_schemas.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What made it: "created", "updated", "ai_edit" (with the instruction in `note`).
    change: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EntityJob(TenantMixin, Base):
    """What a job of this surface was asked to do; its status, lease and event log are
    the job runtime's (`jobs`, same id)."""

    __tablename__ = "entity_jobs"
    __table_args__ = (Index(None, "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(
        String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    # enrichment (single or batch), schema_generation, schema_edit, fusion
    kind: Mapped[str] = mapped_column(String(24))
    schema_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    schema_version: Mapped[int | None] = mapped_column(Integer)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    strategy: Mapped[str | None] = mapped_column(String(32))
    arbitration_model: Mapped[str | None] = mapped_column(String(MODEL_LENGTH))
    # The request's other options (language, instructions, the sample entities …).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total_entities: Mapped[int] = mapped_column(Integer, default=0)
    completed_entities: Mapped[int] = mapped_column(Integer, default=0)
    failed_entities: Mapped[int] = mapped_column(Integer, default=0)
    # The sum of its records' costs, added in the transaction that adds each record.
    total_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EntityJobItem(Base):
    """One entity of an enrichment job, in the order it was given (`entity_index`)."""

    __tablename__ = "entity_job_items"
    __table_args__ = (PrimaryKeyConstraint("job_id", "entity_index"),)

    job_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("entity_jobs.id", ondelete="CASCADE")
    )
    entity_index: Mapped[int] = mapped_column(Integer)
    entity_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending, done, failed (a job that resumes after a crash takes the pending ones)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column()


class EntityRecord(TenantMixin, Base):
    """One model's result for one entity (`type` enrichment), or their fusion (`type`
    fusion). A job finds the pairs it already finished by (job_id, entity_index, model,
    type), unique, so a resumed job never asks a model twice for one entity."""

    __tablename__ = "entity_records"
    __table_args__ = (
        UniqueConstraint("job_id", "entity_index", "type", "model"),
        Index(None, "org_id", "environment", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))  # enrichment, fusion
    job_id: Mapped[str | None] = mapped_column(String(40))
    entity_index: Mapped[int | None] = mapped_column(Integer)
    entity_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The entity's name (or its first text value), lower-cased: what text search matches.
    entity_name: Mapped[str | None] = mapped_column(String(500))
    schema_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    schema_version: Mapped[int | None] = mapped_column(Integer)
    # The model that answered; for a fused record "fusion", with the fused models in
    # `models` (and the arbiter, when one was asked, in `arbitration_model`).
    model: Mapped[str] = mapped_column(String(MODEL_LENGTH))
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    arbitration_model: Mapped[str | None] = mapped_column(String(MODEL_LENGTH))
    strategy: Mapped[str | None] = mapped_column(String(32))
    structured_output: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A fused record's per-field account: the value chosen, the candidates, the models
    # that agreed, the confidence, and whether the arbiter decided it or a tie remains.
    fusion: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
