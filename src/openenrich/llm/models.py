from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow


class ProviderKey(TenantMixin, Base):
    """A tenant's key for an LLM (or scraping) provider, encrypted with the server's secret."""

    __tablename__ = "provider_keys"
    __table_args__ = (
        UniqueConstraint("org_id", "environment", "provider", name="uq_provider_keys_provider"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))  # its key name: OPENAI, FIRECRAWL, …
    encrypted_key: Mapped[str] = mapped_column(Text)  # Fernet token; "" when there is none
    key_prefix: Mapped[str] = mapped_column(String(16))  # shown in listings
    base_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LlmCall(TenantMixin, Base):
    """One `complete()`: what it cost, across every attempt it took."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_tenant", "org_id", "environment", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(40), index=True)
    model: Mapped[str] = mapped_column(String(200))  # provider::model
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8), default=Decimal(0))
    cost_known: Mapped[bool] = mapped_column(Boolean, default=True)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(40))  # ok, or the error's code
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LlmCacheEntry(Base):
    """A cached answer, keyed by a digest of (model, prompt, schema, temperature, tools).

    Tenants share nothing: the digest includes the tenant."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON of the answer
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(index=True)
