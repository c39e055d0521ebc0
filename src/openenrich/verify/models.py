from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow


class Thread(TenantMixin, Base):
    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(TenantMixin, Base):
    """A verification run. Its lifecycle (status, timestamps, error) is its job row, which
    has the same id."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_thread", "thread_id", "created_at"),
        Index("ix_runs_key_active", "api_key_id", "created_at"),
        Index("ix_runs_tenant", "org_id", "environment", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(40))
    api_key_id: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    workflow: Mapped[str | None] = mapped_column(String(100))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)
    answer: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {"base", "token", "seconds"}: what each read mints the signed report_url from (links.py)
    report_link: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ToolCall(TenantMixin, Base):
    """One check a run made. (run, step) is unique: a retried run finds its finished checks
    here and does not run (or bill) them again."""

    __tablename__ = "tool_calls"
    __table_args__ = (UniqueConstraint("run_id", "step", name="uq_tool_calls_step"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # call_…
    run_id: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(80))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12))  # started, success, failed, not_found
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    summary: Mapped[str | None] = mapped_column(Text)  # the check's sentence for the answer
    billed: Mapped[bool] = mapped_column(Boolean, default=False)
    credits: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Workflow(TenantMixin, Base):
    """An organisation's own workflow (Markdown). Built-ins are code, not rows."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("org_id", "environment", "slug", name="uq_workflows_slug"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    content: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
