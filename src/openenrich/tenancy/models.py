from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow


class Plan(Base):
    """Limits an organisation works under; `None` in a limit column means unlimited."""

    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    requests_per_second: Mapped[float | None] = mapped_column(Float)
    events_per_month: Mapped[int | None] = mapped_column(BigInteger)
    lead_quota: Mapped[int | None] = mapped_column(BigInteger)
    # "unlimited": credits are never checked. "prepaid": a run needs a positive balance
    # when it is created, then may overdraw (the verification reference's policy).
    credit_policy: Mapped[str] = mapped_column(String(16), default="unlimited")
    max_credits: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    plan_name: Mapped[str] = mapped_column(
        String(64), ForeignKey("plans.name", onupdate="CASCADE"), default="unlimited"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(TenantMixin, Base):
    """An API key. Only its SHA-256 is stored; `prefix` (its first 16 characters) names it."""

    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "org_id", "environment"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(8))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # Runs created with this key skip plan approval (the verification reference's option).
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class ChangeCounter(Base):
    """Counters that database triggers bump when a kind of data changes, so a process can
    tell cheaply whether what it cached is still current.

    `tenancy`: keys (not their `last_used_at`), organisations and plans; the `KeyCache`
    keeps authenticated principals while it stands still (migration 0005 has the triggers).
    """

    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class RateLimitBucket(Base):
    """Token-bucket state shared by every server process on one database.

    `updated_at` is Unix seconds; `allowed` is the outcome of the last take, so one
    upsert both decides and reports (see tenancy.ratelimit).
    """

    __tablename__ = "rate_limit_buckets"

    bucket_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    allowed: Mapped[bool] = mapped_column(Boolean)
