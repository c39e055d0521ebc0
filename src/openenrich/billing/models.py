from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow


class LedgerEntry(TenantMixin, Base):
    """One charge. (source, item) is unique: the same billed step can never be charged twice,
    however often it is retried."""

    __tablename__ = "credit_ledger"
    __table_args__ = (
        UniqueConstraint("source_id", "item_id", name="uq_credit_ledger_item"),
        Index("ix_credit_ledger_tenant", "org_id", "environment", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(40))  # e.g. the run
    item_id: Mapped[str] = mapped_column(String(64))  # e.g. the tool call
    description: Mapped[str] = mapped_column(String(200), default="")
    credits: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
