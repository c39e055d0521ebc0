"""Lead pipelines' tables: pipelines, leads (one per e-mail per tenant), the junction rows
a pipeline lists (and the marks that hold offset walks over them still), templates and
columns, and the per-lead ledger of enrichment and validation jobs.

Ids are UUIDs (version 7, time-ordered), as the reference names its resources. Counters
that the reference shows on every pipeline are columns kept in step by the writes that
change them, in the same transaction, so reading a pipeline of a million leads costs one
row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow

UUID_LENGTH = 36
EMAIL_LENGTH = 320  # RFC 3696's longest address
# The longest custom-field key a template may name (longer keys are stored, not named).
FIELD_KEY_LENGTH = 200


class Pipeline(TenantMixin, Base):
    __tablename__ = "lead_pipelines"
    __table_args__ = (Index(None, "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The computed stats, kept in step by the writes that change them.
    total_leads: Mapped[int] = mapped_column(BigInteger, default=0)
    imported_leads: Mapped[int] = mapped_column(BigInteger, default=0)
    validated_leads: Mapped[int] = mapped_column(BigInteger, default=0)
    enriched_leads: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_emails: Mapped[int] = mapped_column(BigInteger, default=0)
    invalid_emails: Mapped[int] = mapped_column(BigInteger, default=0)
    risky_emails: Mapped[int] = mapped_column(BigInteger, default=0)
    unknown_emails: Mapped[int] = mapped_column(BigInteger, default=0)


class LeadAccount(TenantMixin, Base):
    """A tenant's lead count: the row an upload locks to check the plan's quota, so two
    uploads at once are serialised there and cannot pass the quota together."""

    __tablename__ = "lead_accounts"
    __table_args__ = (PrimaryKeyConstraint("org_id", "environment"),)

    lead_count: Mapped[int] = mapped_column(BigInteger, default=0)


class LeadUploadSlot(TenantMixin, Base):
    """One of a tenant's concurrent-upload slots (the reference allows 3 uploads at once
    per account), leased by an upload in progress. A table, so that every `serve`
    process on one PostgreSQL shares the count; a lease expires (`expires_at`, Unix
    seconds), so a process that dies holding one gives it back. `holder` is the lease's
    own random token: a late release cannot free a slot someone else has taken since."""

    __tablename__ = "lead_upload_slots"
    __table_args__ = (PrimaryKeyConstraint("org_id", "environment", "slot"),)

    slot: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[float] = mapped_column(Float)


class Lead(TenantMixin, Base):
    """One person, once per tenant: `email_key` (the normalised address) is unique, which
    is the account-wide dedup."""

    __tablename__ = "leads"
    __table_args__ = (UniqueConstraint("org_id", "environment", "email_key"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    email_key: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    company: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    linkedin_url: Mapped[str | None] = mapped_column(Text)
    company_website: Mapped[str | None] = mapped_column(Text)
    company_description: Mapped[str | None] = mapped_column(Text)
    company_size: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    # JSONB on PostgreSQL, so a job adds its keys in place (`||`) without reading first.
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )
    enrichment_status: Mapped[str] = mapped_column(String(16), default="NOT_ENRICHED")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# The fields a lead has besides `email` and `custom_fields`, in the reference's order:
# an upload stores them, a prompt template may name them, a Firecrawl `url_column` may be
# one of them, and a listing shows each as `lead_<field>`.
LEAD_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "linkedin_url",
    "company_website",
    "company_description",
    "company_size",
    "industry",
    "location",
)


class LeadFieldKey(TenantMixin, Base):
    """A custom-field key a tenant's leads hold: what a prompt template may name as a
    `{{placeholder}}` besides the lead fields. Kept by the writes that add keys (an upload
    names its batch's keys once, a job the keys it writes), so checking a template reads a
    few rows instead of every lead's JSON."""

    __tablename__ = "lead_field_keys"
    __table_args__ = (PrimaryKeyConstraint("org_id", "environment", "key"),)

    key: Mapped[str] = mapped_column(String(FIELD_KEY_LENGTH))


class PipelineLead(TenantMixin, Base):
    """A lead in a pipeline: what `GET /v1/pipelines/:id/leads` lists, newest first."""

    __tablename__ = "pipeline_leads"
    __table_args__ = (
        # Also the index of "the pipelines of a lead" (validation by lead ids).
        UniqueConstraint("lead_id", "pipeline_id"),
        Index(None, "pipeline_id", "created_at", "id"),
    )

    # Uploads write these rows by the thousand, in the transaction that writes their
    # leads, and on PostgreSQL each foreign key costs a lookup per row: 15-40 ms per
    # 4,000, half the insert. So only the pipeline's key is declared (it cascades a
    # pipeline's deletion); the organisation is the pipeline's, and the lead is the one
    # the same upload just inserted (no lead is ever deleted).
    org_id: Mapped[str] = mapped_column(String(40))
    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(
        String(UUID_LENGTH), ForeignKey("lead_pipelines.id", ondelete="CASCADE")
    )
    lead_id: Mapped[str] = mapped_column(String(UUID_LENGTH))
    stage: Mapped[str] = mapped_column(String(16), default="IMPORTED")
    # VALID, INVALID, RISKY, UNKNOWN; None until validated.
    email_validation_status: Mapped[str | None] = mapped_column(String(8))
    # The validation's raw observations (syntax, mx, smtp, catch_all, disposable, role,
    # free) next to the verdict, readable per lead.
    email_validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeadListMark(TenantMixin, Base):
    """Where a key's offset walk over a pipeline began (`marks.py`): the newest row at its
    offset-0 page and the pipeline's total then, so its later pages list the pipeline as
    it was. One per key, pipeline and page size, overwritten by the next offset-0 page.

    No foreign keys to the key or the pipeline (each would cost a lookup per listing): a
    mark of a key or pipeline that is gone is never read again, and housekeeping purges
    it once it is stale."""

    __tablename__ = "lead_list_marks"
    __table_args__ = (PrimaryKeyConstraint("api_key_id", "pipeline_id", "page_size"),)

    api_key_id: Mapped[str] = mapped_column(String(40))
    pipeline_id: Mapped[str] = mapped_column(String(UUID_LENGTH))
    page_size: Mapped[int] = mapped_column(Integer)
    # The newest pipeline_leads row's (created_at, id), copied as stored; None when the
    # pipeline was empty.
    anchor_at: Mapped[datetime | None] = mapped_column()
    anchor_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    total: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[datetime] = mapped_column()


class AiTemplate(TenantMixin, Base):
    __tablename__ = "lead_ai_templates"
    __table_args__ = (Index(None, "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prompt_template: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    endpoint_url: Mapped[str | None] = mapped_column(Text)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MultiAiTemplate(TenantMixin, Base):
    __tablename__ = "lead_multi_ai_templates"
    __table_args__ = (Index(None, "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    output_fields: Mapped[list[str]] = mapped_column(JSON)
    prompt_template: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    endpoint_url: Mapped[str | None] = mapped_column(Text)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FirecrawlTemplate(TenantMixin, Base):
    __tablename__ = "lead_firecrawl_templates"
    __table_args__ = (Index(None, "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url_column: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    output_fields: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineColumn(TenantMixin, Base):
    """A column shown beside a pipeline's leads: a lead field (`base`), or one output of
    an AI, multi-AI or Firecrawl template."""

    __tablename__ = "pipeline_columns"
    __table_args__ = (Index(None, "pipeline_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(
        String(UUID_LENGTH), ForeignKey("lead_pipelines.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(16))  # base, ai, multi_ai, firecrawl
    key: Mapped[str | None] = mapped_column(String(200))  # base: the lead field
    template_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    field: Mapped[str | None] = mapped_column(String(200))  # multi_ai, firecrawl: the output
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeadJob(TenantMixin, Base):
    """An enrichment or validation job as the reference shows it. Its lifecycle (status,
    lease, cancel, events) is the job row with the same id; the counters here change in
    the same transaction as each lead's result, so they are right after a crash."""

    __tablename__ = "lead_jobs"
    __table_args__ = (Index(None, "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(
        String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    pipeline_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    # "enrichment" or "validation"; `type` is the enrichment_type or the service.
    family: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total_leads: Mapped[int] = mapped_column(Integer, default=0)
    processed_leads: Mapped[int] = mapped_column(Integer, default=0)
    failed_leads: Mapped[int] = mapped_column(Integer, default=0)
    skipped_leads: Mapped[int] = mapped_column(Integer, default=0)
    valid_leads: Mapped[int] = mapped_column(Integer, default=0)
    invalid_leads: Mapped[int] = mapped_column(Integer, default=0)
    risky_leads: Mapped[int] = mapped_column(Integer, default=0)
    unknown_leads: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeadJobItem(Base):
    """One lead of a job, chosen when the job is created (so "the 100 most recent" means
    the same leads after a restart). `status` goes pending → done, failed or skipped, in
    the transaction that stores the lead's result: a restarted job picks up the pending
    ones and never calls a model twice for a finished lead."""

    __tablename__ = "lead_job_items"
    __table_args__ = (
        PrimaryKeyConstraint("job_id", "position"),
        Index(None, "job_id", "status", "position"),
    )

    job_id: Mapped[str] = mapped_column(String(40), ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    lead_id: Mapped[str] = mapped_column(String(UUID_LENGTH))
    pipeline_lead_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    status: Mapped[str] = mapped_column(String(8), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column()
