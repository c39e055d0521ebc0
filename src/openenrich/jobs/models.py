from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow

# queued -> running -> completed | failed | cancelled
#            running -> parked (waiting for input) -> queued (resumed) | cancelled
#            running -> interrupted (its worker died) | queued again (retried)
STATUSES = ("queued", "running", "parked", "completed", "failed", "cancelled", "interrupted")
TERMINAL = frozenset({"completed", "failed", "cancelled", "interrupted"})

_EVENTS_KEPT = text("finished_at IS NOT NULL AND NOT events_purged")


class Job(TenantMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_after", "created_at"),
        Index("ix_jobs_lease", "status", "lease_expires_at"),
        Index("ix_jobs_owner", "lease_owner", "status"),
        # Finished jobs whose events are still kept, oldest first: the retention purge
        # reads only these, however many jobs were purged before.
        Index(
            "ix_jobs_events_kept",
            "finished_at",
            sqlite_where=_EVENTS_KEPT,
            postgresql_where=_EVENTS_KEPT,
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The handler's checkpoint: where to resume after a pause or a retry.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Its event log was deleted, `job_events_retention_days` after it finished.
    events_purged: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    last_event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    run_after: Mapped[datetime | None] = mapped_column()
    parked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class JobEvent(TenantMixin, Base):
    """A job's ordered event log; `seq` counts from 1 per job and never repeats."""

    __tablename__ = "job_events"

    job_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(TenantMixin, Base):
    """An Idempotency-Key a tenant sent with a request that created a job, and a digest of
    that request. The column is `run_id` because runs were the first jobs with keys."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("org_id", "environment", "key", name="uq_idempotency_keys_key"),
        Index("ix_idempotency_keys_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column("run_id", String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
